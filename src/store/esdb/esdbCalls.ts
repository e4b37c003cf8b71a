import { setTimeout as sleep } from 'node:timers/promises';
import type {
  RecordedEvent as EsdbRecordedEvent,
  EventStoreDBClient,
  ResolvedEvent,
} from '@eventstore/db-client';
import { KeyledgerError } from '../../domain/errors.js';
import { storeClosedError } from '../adapterSupport.js';
import type { RecordedEvent } from '../eventStore.js';
import { parseEsdbConnectionString } from './connectionString.js';
import { esdbClient } from './esdbClient.js';
import { isTransient, toStoreError } from './esdbErrors.js';
import { toRecordedEvent } from './esdbRecords.js';

const DEFAULT_UNAVAILABLE_TIMEOUT_MS = 5000;
const DEFAULT_RESUBSCRIBE_TIMEOUT_MS = 60_000;
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 1000;

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${name} must be a positive number of milliseconds`, {
      [name]: String(value),
    });
  }
  return ms;
}

/**
 * The EventStoreDB client and how every call to it runs: retried while the server cannot be
 * reached, its errors converted at this edge, refused once the store is closed. Reads through it
 * are always consumed to their end (see `readRaw`).
 */
export class EsdbCalls {
  readonly client: EventStoreDBClient;
  /** The server's URL without credentials. */
  readonly url: string;
  /** How long a call keeps retrying while the server cannot be reached (EsdbEventStoreOptions). */
  readonly unavailableTimeoutMs: number;
  /** How long a live subscription keeps subscribing again (EsdbEventStoreOptions). */
  readonly resubscribeTimeoutMs: number;
  #closed = false;

  /**
   * Creates the client for a connection string (`esdb://…`, `esdb+discover://…`), with the timeouts
   * validated (EsdbEventStoreOptions says what they mean and their defaults). Nothing is contacted.
   */
  static open(
    connectionString: string,
    options: { readonly unavailableTimeoutMs?: number; readonly resubscribeTimeoutMs?: number },
  ): EsdbCalls {
    const connection = parseEsdbConnectionString(connectionString);
    const unavailableTimeoutMs = positiveMs(
      options.unavailableTimeoutMs,
      DEFAULT_UNAVAILABLE_TIMEOUT_MS,
      'unavailableTimeoutMs',
    );
    const resubscribeTimeoutMs = positiveMs(
      options.resubscribeTimeoutMs,
      DEFAULT_RESUBSCRIBE_TIMEOUT_MS,
      'resubscribeTimeoutMs',
    );
    let client: EventStoreDBClient;
    try {
      client = esdbClient().EventStoreDBClient.connectionString(connection.connectionString);
    } catch (error) {
      // The client's parse errors quote the whole string, password included: not kept as cause.
      const quotesUrl = typeof error === 'object' && error !== null && 'connectionString' in error;
      throw new KeyledgerError(
        'ERR_INVALID_STORE_URL',
        `cannot use the EventStoreDB store URL ${connection.redacted}: ${quotesUrl ? 'the client rejected it' : String((error as Error).message)}`,
        { scheme: 'esdb', url: connection.redacted },
        quotesUrl ? undefined : { cause: error },
      );
    }
    return new EsdbCalls(client, connection.redacted, unavailableTimeoutMs, resubscribeTimeoutMs);
  }

  private constructor(
    client: EventStoreDBClient,
    url: string,
    unavailableTimeoutMs: number,
    resubscribeTimeoutMs: number,
  ) {
    this.client = client;
    this.url = url;
    this.unavailableTimeoutMs = unavailableTimeoutMs;
    this.resubscribeTimeoutMs = resubscribeTimeoutMs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  assertOpen(): void {
    if (this.#closed) throw storeClosedError();
  }

  /** From now on every call fails with ERR_STORE_CLOSED. False when the store was closed already. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Releases the client; after markClosed and after every read and subscription has ended. */
  async dispose(): Promise<void> {
    try {
      await this.client.dispose();
    } catch (error) {
      throw toStoreError(error, this.url, 'close');
    }
  }

  /**
   * Runs one call, trying again (with backoff) while the server cannot be reached, for up to
   * `unavailableTimeoutMs`; then, or on any other failure, converts the error at this edge. Every
   * call is safe to repeat: reads change nothing and appends are idempotent by event id.
   */
  async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      try {
        return await run();
      } catch (error) {
        if (this.#closed) throw storeClosedError();
        const waited = Date.now() - started;
        const pause = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
        if (!isTransient(error) || waited + pause > this.unavailableTimeoutMs) {
          throw toStoreError(error, this.url, operation, waited);
        }
        await sleep(pause);
      }
    }
  }

  /**
   * Every event of a bounded read. Reads are always consumed to their end: leaving one early
   * leaves its gRPC call paused and open, and the client's dispose() then waits for it forever.
   */
  async readRaw(read: AsyncIterable<ResolvedEvent>): Promise<EsdbRecordedEvent[]> {
    const found: EsdbRecordedEvent[] = [];
    for await (const resolved of read) {
      if (resolved.event !== undefined) found.push(resolved.event);
    }
    return found;
  }

  async readFully(read: AsyncIterable<ResolvedEvent>): Promise<RecordedEvent[]> {
    return (await this.readRaw(read)).map(toRecordedEvent);
  }
}
