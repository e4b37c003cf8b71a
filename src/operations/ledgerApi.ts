import { Duplex, PassThrough, Writable } from 'node:stream';
import { defer, type Observable } from 'rxjs';
import type { Ledger } from '../ledger/ledger.js';
import {
  type BytesName,
  type BytesResult,
  type ByteTransfer,
  type CallOptions,
  checkRequestId,
  type InputOf,
  operationOfKind,
  type UnaryName,
  type WatchItem,
} from './keyledgerApi.js';
import { LedgerHost } from './ledgerHost.js';
import type { ByteStreams, OperationHost, StoreAccess } from './operation.js';
import { prepareInput } from './operationInput.js';
import type { OutputOf } from './operations.js';
import { OperationsApi } from './operationsApi.js';

export interface LedgerApiOptions {
  /** The ledger the operations run on; it stays the caller's to close. */
  readonly ledger: Ledger;
  /** Recorded as the actor of every event written through this API (default: the ledger's own). */
  readonly actor?: string;
  /** The store unreplayed, for `verify` and `audit-export` (without it they refuse). */
  readonly store?: StoreAccess;
}

type Run = (prepared: unknown, host: OperationHost, streams?: ByteStreams) => unknown;

/**
 * KeyledgerApi in process: each call runs the operation's `prepare` and `run` on the ledger, as the
 * CLI and the server do, so results and error codes are the operation table's own.
 */
export class LedgerApi extends OperationsApi {
  readonly #options: LedgerApiOptions;

  constructor(options: LedgerApiOptions) {
    super();
    this.#options = options;
  }

  async call<N extends UnaryName>(name: N, input: InputOf<N>, options?: CallOptions): Promise<OutputOf<N>> {
    const operation = operationOfKind(name, 'unary');
    const prepared = prepareInput(operation, input);
    return (await (operation.run as Run)(prepared, this.#host(options))) as OutputOf<N>;
  }

  stream<N extends BytesName>(name: N, input: InputOf<N>, options?: CallOptions): ByteTransfer<N> {
    const source = new PassThrough();
    const output = new PassThrough();
    const stream = Duplex.from({ writable: source, readable: output });
    const result = (async () => {
      const operation = operationOfKind(name, 'bytes');
      const prepared = prepareInput(operation, input);
      const value = await (operation.run as Run)(prepared, this.#host(options), { input: source, output });
      // The operation writes its output but never ends it (on the CLI it is stdout).
      output.end();
      return value as OutputOf<N>;
    })();
    result.catch((error: unknown) => stream.destroy(error as Error));
    return { stream, result };
  }

  events$(filter: InputOf<'watch'> = {}): Observable<WatchItem> {
    // Input errors arrive through the Observable, as they do from a server.
    return defer(() => {
      const operation = operationOfKind('watch', 'events');
      return (operation.run as Run)(prepareInput(operation, filter), this.#host()) as Observable<WatchItem>;
    });
  }

  async close(): Promise<void> {}

  #host(options?: CallOptions): LedgerHost {
    return new LedgerHost({
      ledger: this.#options.ledger,
      store: this.#options.store,
      actor: this.#options.actor,
      reason: options?.reason,
      correlationId: checkRequestId(options?.requestId),
    });
  }

  protected async bytes<N extends 'encrypt' | 'decrypt'>(
    name: N,
    input: InputOf<N>,
    data: Uint8Array,
    options: CallOptions | undefined,
  ): Promise<BytesResult<N>> {
    const operation = operationOfKind(name, 'bytes');
    const prepared = prepareInput(operation, input);
    const parts: Buffer[] = [];
    const output = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        parts.push(chunk);
        callback();
      },
    });
    const result = await (operation.run as Run)(prepared, this.#host(options), {
      input: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      output,
    });
    return { result: result as OutputOf<N>, data: Buffer.concat(parts) };
  }
}
