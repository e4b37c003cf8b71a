import { authorize, type Grant, type Permission, type Principal } from '../domain/grants.js';
import type { Ledger } from '../ledger/ledger.js';
import type { OperationHost, StoreAccess } from '../operations/operation.js';

export interface ServerHostOptions {
  readonly ledger: Ledger;
  readonly storeAccess: StoreAccess;
  readonly principal: Principal;
  readonly reason: string | undefined;
  readonly requestId: string;
  /** Aborted when the client goes away (made on first use). */
  readonly signal: () => AbortSignal;
}

/**
 * The OperationHost of one request: the server's one Ledger (and store), shared by every request and
 * closed by the server, never by an operation. The actor of every event written is the
 * authenticated principal and its correlation id the request id; nothing in the request can choose
 * another. No local files: the operations that need them are not served.
 */
export class ServerHost implements OperationHost {
  readonly #options: ServerHostOptions;
  readonly actor: string;
  readonly reason: string | undefined;
  readonly correlationId: string;
  readonly local = null;
  readonly grants: readonly Grant[];

  constructor(options: ServerHostOptions) {
    this.#options = options;
    this.actor = options.principal.name;
    this.reason = options.reason;
    this.correlationId = options.requestId;
    this.grants = options.principal.grants;
  }

  get signal(): AbortSignal {
    return this.#options.signal();
  }

  async ledger(): Promise<Ledger> {
    return this.#options.ledger;
  }

  async store(): Promise<StoreAccess> {
    return this.#options.storeAccess;
  }

  authorize(permission: Permission, custodian: string): void {
    authorize(this.#options.principal, permission, custodian);
  }

  progress(): void {
    // A request answers once; progress of a long operation is followed through `watch`.
  }
}
