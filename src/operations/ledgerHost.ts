import type { Ledger } from '../ledger/ledger.js';
import type { OperationHost, StoreAccess } from './operation.js';
import { invalidArgument } from './queryOperations.js';

/**
 * An OperationHost over a ledger some caller opened and keeps open (a library user, a server): it
 * closes nothing. The actor is fixed when the host is made (a library user's name, a server's
 * authenticated principal), never taken from a request; the reason is per call. Nothing local: the
 * operations on local files refuse (ERR_INVALID_ARGUMENT).
 */
export class LedgerHost implements OperationHost {
  readonly #ledger: Ledger;
  readonly #store: StoreAccess | undefined;
  readonly actor: string | undefined;
  readonly reason: string | undefined;
  readonly correlationId: string | undefined;
  readonly signal: AbortSignal;
  readonly local = null;

  constructor(options: {
    readonly ledger: Ledger;
    readonly store?: StoreAccess | undefined;
    readonly actor?: string | undefined;
    readonly reason?: string | undefined;
    readonly correlationId?: string | undefined;
    readonly signal?: AbortSignal | undefined;
  }) {
    this.#ledger = options.ledger;
    this.#store = options.store;
    this.actor = options.actor;
    this.reason = options.reason;
    this.correlationId = options.correlationId;
    this.signal = options.signal ?? new AbortController().signal;
  }

  async ledger(): Promise<Ledger> {
    return this.#ledger;
  }

  async store(): Promise<StoreAccess> {
    // verify and audit-export read the store unreplayed; a host given no store cannot run them.
    if (this.#store === undefined) throw invalidArgument('this host was given no store access');
    return this.#store;
  }

  progress(): void {}
}
