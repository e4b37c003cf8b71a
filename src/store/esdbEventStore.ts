import type { Observable } from 'rxjs';
import { validateStreamName } from './adapterSupport.js';
import { DocumentSnapshotRows } from './documentSnapshotRows.js';
import { CatchUpReads } from './esdb/catchUpReads.js';
import { EsdbAppender } from './esdb/esdbAppender.js';
import { EsdbCalls } from './esdb/esdbCalls.js';
import { esdbClient } from './esdb/esdbClient.js';
import { isMissingStream } from './esdb/esdbErrors.js';
import { headPosition } from './esdb/esdbHeads.js';
import { EsdbSnapshots } from './esdb/esdbSnapshots.js';
import { LiveSubscriptions } from './esdb/liveSubscriptions.js';
import { RecentWrites } from './esdb/recentWrites.js';
import type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  ReadAllOptions,
  RecordedEvent,
  Snapshot,
  SnapshotRow,
  SnapshotRowChange,
  SubscribeOptions,
} from './eventStore.js';

export interface EsdbEventStoreOptions {
  /**
   * How long a call (append, read, delete, snapshot, and the catch-up of readAll) keeps retrying
   * while the server cannot be reached (refused, restarting, electing a leader, timed out) before it
   * fails with ERR_STORE_UNAVAILABLE. Default 5000 ms. This is also what an unreachable server at
   * start costs: the client connects lazily, so the first call finds out.
   */
  readonly unavailableTimeoutMs?: number;
  /**
   * How long a live subscription keeps subscribing again, from the last event it delivered, while
   * the server cannot be reached, before the Observable errors with ERR_STORE_UNAVAILABLE.
   * Default 60 000 ms: longer than a cluster's leader election or a node restart.
   */
  readonly resubscribeTimeoutMs?: number;
}

/**
 * The EventStoreDB / KurrentDB adapter, on `@eventstore/db-client` (public API only). Streams map
 * one to one; the port's position is the commit position in `$all`; readAll and subscribe are
 * catch-up subscriptions to `$all` filtered by stream prefix on the server; snapshots are the last
 * event of a stream of their own (see esdb/esdbRecords.ts).
 *
 * What differs from the embedded stores, by EventStoreDB's design: deleteStream is a soft delete,
 * so a deleted stream's events stay in `$all` (and reach readAll and subscriptions that start
 * before them) until the operator runs a scavenge; a retried append is recognised when it comes
 * with the expected revision of its first attempt (the server's own idempotence) or, for batches
 * this process sent, when its events are the stream's last ones; not anywhere in the stream.
 *
 * Its parts live in esdb/: how calls run (esdbCalls.ts: retry, errors, closing), the append path
 * (esdbAppender.ts), readAll (catchUpReads.ts), subscribe (liveSubscriptions.ts), snapshots
 * (esdbSnapshots.ts).
 */
export class EsdbEventStore implements EventStore {
  readonly #calls: EsdbCalls;
  readonly #recent = new RecentWrites();
  readonly #appender: EsdbAppender;
  readonly #reads: CatchUpReads;
  readonly #live: LiveSubscriptions;
  readonly #snapshots: EsdbSnapshots;
  /** Row snapshots as one document each (documentSnapshotRows.ts): EventStoreDB has no table. */
  readonly #rows = new DocumentSnapshotRows(this);
  /** A row is read with its whole document (EventStore.snapshotRowReadAlone). */
  readonly snapshotRowReadAlone = false;

  /**
   * Creates the client for a connection string (`esdb://…`, `esdb+discover://…`). Nothing is
   * contacted yet: the client connects on the first call, which retries for
   * `unavailableTimeoutMs` and then fails with ERR_STORE_UNAVAILABLE naming the (redacted) URL.
   */
  static open(connectionString: string, options: EsdbEventStoreOptions = {}): EsdbEventStore {
    return new EsdbEventStore(EsdbCalls.open(connectionString, options));
  }

  private constructor(calls: EsdbCalls) {
    this.#calls = calls;
    this.#appender = new EsdbAppender(calls, this.#recent);
    this.#reads = new CatchUpReads(calls);
    this.#live = new LiveSubscriptions(calls);
    this.#snapshots = new EsdbSnapshots(calls);
  }

  /** The server's URL without credentials. */
  get url(): string {
    return this.#calls.url;
  }

  append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    return this.#appender.append(stream, events, expected);
  }

  async readStream(
    stream: string,
    options: { readonly fromRevision?: bigint } = {},
  ): Promise<readonly RecordedEvent[]> {
    this.#calls.assertOpen();
    validateStreamName(stream);
    const from = options.fromRevision;
    return this.#calls.call('readStream', async () => {
      try {
        return await this.#calls.readFully(
          this.#calls.client.readStream(stream, {
            direction: esdbClient().FORWARDS,
            fromRevision: from === undefined || from <= 0n ? esdbClient().START : from,
          }),
        );
      } catch (error) {
        if (isMissingStream(error)) return [];
        throw error;
      }
    });
  }

  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    return this.#reads.readAll(options);
  }

  subscribe(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return this.#live.subscribe(options);
  }

  /**
   * Position of the last event in the store, not counting EventStoreDB's own streams (`$…`) nor
   * the adapter's snapshot streams: what a subscriber of the ledger can wait for.
   */
  async headPosition(): Promise<bigint> {
    this.#calls.assertOpen();
    return headPosition(this.#calls);
  }

  /**
   * A soft delete: the stream reads as empty and can be written again, revisions continuing. Its
   * events stay in `$all` until a scavenge; crypto-shredding on EventStoreDB needs one (see
   * docs/operations.md).
   */
  async deleteStream(stream: string): Promise<void> {
    this.#calls.assertOpen();
    validateStreamName(stream);
    await this.#calls.call('deleteStream', async () => {
      this.#recent.noteDeleted(stream);
      try {
        await this.#calls.client.deleteStream(stream);
      } catch (error) {
        // Absent or already deleted: nothing to do, as the port says.
        if (isMissingStream(error) || error instanceof esdbClient().WrongExpectedVersionError) return;
        throw error;
      }
    });
  }

  loadSnapshot(name: string): Promise<Snapshot | null> {
    return this.#snapshots.load(name);
  }

  saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
    return this.#snapshots.save(name, snapshot);
  }

  saveSnapshotRows(
    name: string,
    header: Snapshot,
    rows: Iterable<SnapshotRowChange>,
    base: bigint | null,
  ): Promise<boolean> {
    return this.#rows.save(name, header, rows, base);
  }

  loadSnapshotRow(name: string, key: string): Promise<string | null> {
    return this.#rows.load(name, key);
  }

  readSnapshotRows(name: string): AsyncIterable<readonly SnapshotRow[]> {
    return this.#rows.read(name);
  }

  async close(): Promise<void> {
    if (!this.#calls.markClosed()) return;
    this.#live.closeAll();
    this.#reads.closeAll();
    await this.#calls.dispose();
  }
}
