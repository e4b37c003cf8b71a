import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Observable } from 'rxjs';
import { KeyledgerError } from '../domain/errors.js';
import {
  type EventSource,
  LiveSubscriptions,
  readAllPages,
  storeClosedError,
  storeError,
  toJsonText,
  validateBatch,
  validateStreamName,
} from './adapterSupport.js';
import type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  JsonValue,
  ReadAllOptions,
  RecordedEvent,
  Snapshot,
  SnapshotRow,
  SnapshotRowChange,
  SubscribeOptions,
} from './eventStore.js';
import { BUSY_TIMEOUT_MS, configureDatabase } from './sqlite/configureDatabase.js';
import { HeadPoller } from './sqlite/headPoller.js';
import { withOpenRetries } from './sqlite/openRetries.js';
import { prepareFiles } from './sqlite/prepareFiles.js';
import { SqliteRowSnapshots } from './sqlite/sqliteRowSnapshots.js';
import { migrate } from './sqlite/sqliteSchema.js';
import { prepareStatements, type SqliteStatements, toRecorded } from './sqlite/sqliteStatements.js';
import { type AppendRequest, type EncodedEvent, SqliteWrites } from './sqlite/sqliteWrites.js';

const DEFAULT_POLL_INTERVAL_MS = 20;

export interface SqliteEventStoreOptions {
  /** How often to look for events written by other processes (default 20 ms). */
  readonly pollIntervalMs?: number;
}

/** An append waiting for this turn's group commit. */
interface PendingAppend {
  readonly request: AppendRequest;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

/**
 * The embedded default: one sqlite file, usable by several processes at once.
 *
 * Writes are serialised by sqlite's write lock (appends run in BEGIN IMMEDIATE), so positions are
 * handed out in commit order: once a reader has seen position p, no later commit can land below p.
 * Subscriptions rely on that: they re-read from their cursor when this process appends and when a
 * poll sees the head move (another process appended), and never miss or repeat an event.
 *
 * Its parts live in sqlite/: file preparation, connection settings, schema and migration, the
 * prepared statements, the write transactions, and the poller that notices other processes.
 */
export class SqliteEventStore implements EventStore {
  readonly #db: Database.Database;
  readonly #statements: SqliteStatements;
  readonly #writes: SqliteWrites;
  readonly #rowSnapshots: SqliteRowSnapshots;
  /** One table row per key, read by its primary key (EventStore.snapshotRowReadAlone). */
  readonly snapshotRowReadAlone = true;
  #pending: PendingAppend[] = [];
  readonly #poller: HeadPoller;
  #closed = false;
  /**
   * A stream was deleted (crypto-shredding) and a snapshot written before the deletion may still
   * hold its data: the next snapshot saved replaces it, and is checkpointed out of the WAL at once.
   */
  #shredPending = false;

  readonly #source: EventSource = {
    head: () => {
      this.#assertOpen();
      try {
        return this.#statements.selectHead.get() ?? 0n;
      } catch (error) {
        throw storeError(error, 'read head');
      }
    },
    readPage: (after, upTo, prefix, limit) => {
      this.#assertOpen();
      try {
        // Prefixes compare as UTF-8 bytes, as sqlite stores the names; substr on text would count
        // code points where JavaScript counts UTF-16 units.
        const rows =
          prefix === undefined
            ? this.#statements.selectPage.all(after, upTo, limit)
            : this.#statements.selectPrefixPage.all(
                after,
                upTo,
                Buffer.byteLength(prefix),
                Buffer.from(prefix),
                limit,
              );
        return rows.map(toRecorded);
      } catch (error) {
        throw storeError(error, 'read');
      }
    },
  };
  readonly #subscriptions: LiveSubscriptions;

  /** Opens (creating it, and its folder, if needed) the ledger database at `path`. */
  static open(path: string, options: SqliteEventStoreOptions = {}): SqliteEventStore {
    const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    if (!Number.isFinite(pollIntervalMs) || pollIntervalMs <= 0) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'pollIntervalMs must be a positive number', {
        pollIntervalMs,
      });
    }
    if (path.length === 0) throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'sqlite path is empty', { path });
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:') prepareFiles(resolve(path));
      db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
      const opened = db;
      withOpenRetries(() => {
        configureDatabase(opened);
        migrate(opened);
      });
      return new SqliteEventStore(db, pollIntervalMs);
    } catch (error) {
      db?.close();
      throw storeError(error, 'open');
    }
  }

  private constructor(db: Database.Database, pollIntervalMs: number) {
    this.#db = db;
    this.#statements = prepareStatements(db);
    this.#writes = new SqliteWrites(db, this.#statements);
    this.#rowSnapshots = new SqliteRowSnapshots(db, this.#statements);
    this.#poller = new HeadPoller(
      pollIntervalMs,
      () => this.#source.head(),
      () => this.#subscriptions.notify(),
      (error) => this.#subscriptions.failAll(error),
    );
    this.#subscriptions = new LiveSubscriptions(this.#source, (count) =>
      this.#poller.subscribersChanged(count),
    );
  }

  async append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    this.#assertOpen();
    validateBatch(stream, events);
    // Encoded before the transaction: the write lock is held for the statements only.
    const encoded = events.map(
      (event): EncodedEvent => ({
        eventId: event.eventId,
        type: event.type,
        data: toJsonText(event.data, 'event data'),
        metadata: toJsonText(event.metadata, 'event metadata'),
      }),
    );
    return new Promise<AppendResult>((resolve, reject) => {
      this.#pending.push({ request: { stream, events: encoded, expected }, resolve, reject });
      if (this.#pending.length === 1) setImmediate(() => this.#commitPending());
    });
  }

  /**
   * Group commit: the appends made in one turn of the event loop (concurrent writers, a bulk
   * enable) are written in one transaction, so they share one fsync instead of paying one each
   * (with synchronous = FULL the fsync is most of an append's cost). Each append is still checked
   * and written as if alone and resolves, or fails, alone, once the transaction has committed.
   */
  #commitPending(): void {
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    let wrote = false;
    try {
      this.#assertOpen();
      if (batch.length === 1) {
        const [only] = batch as [PendingAppend];
        const { stream, events, expected } = only.request;
        only.request.outcome = this.#writes.append(stream, events, expected);
      } else {
        this.#writes.appendGroup(batch.map((p) => p.request));
      }
    } catch (error) {
      for (const p of batch) p.reject(storeError(error, 'append'));
      return;
    }
    for (const { request, resolve, reject } of batch) {
      if (request.outcome === undefined) {
        reject(storeError(request.error, 'append'));
        continue;
      }
      if (request.outcome.wrote) {
        wrote = true;
        this.#poller.noteHead(request.outcome.result.position);
      }
      resolve(request.outcome.result);
    }
    if (wrote) this.#subscriptions.notify();
  }

  async readStream(
    stream: string,
    options: { readonly fromRevision?: bigint } = {},
  ): Promise<readonly RecordedEvent[]> {
    this.#assertOpen();
    validateStreamName(stream);
    try {
      return this.#statements.selectStream.all(stream, options.fromRevision ?? 0n).map(toRecorded);
    } catch (error) {
      throw storeError(error, 'readStream');
    }
  }

  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    return readAllPages(this.#source, options);
  }

  subscribe(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return this.#subscriptions.observe(options);
  }

  async headPosition(): Promise<bigint> {
    return this.#source.head();
  }

  /**
   * Erases the stream's rows (secure_delete zeroes them in the file), then checkpoints and
   * truncates the WAL, which still holds copies of the rows as they were written. If another
   * process keeps a read open past the busy timeout the truncation is skipped and those copies
   * stay in the WAL until a later checkpoint overwrites them; the delete itself has committed.
   */
  async deleteStream(stream: string): Promise<void> {
    this.#assertOpen();
    validateStreamName(stream);
    try {
      if (this.#writes.deleteStream(stream)) {
        this.#shredPending = true;
        this.#truncateWal();
      }
    } catch (error) {
      throw storeError(error, 'deleteStream');
    }
  }

  /**
   * Copies every WAL page into the main file and empties the WAL. Until then the main file keeps
   * the pages as they were before the WAL's changes: a row rewritten or deleted since (zeroed by
   * secure_delete in its new page version) is still readable in the old one. True when done; false
   * when another process's open read kept it from finishing.
   */
  #truncateWal(): boolean {
    const [result] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    return result?.busy === 0;
  }

  async loadSnapshot(name: string): Promise<Snapshot | null> {
    this.#assertOpen();
    let row: [bigint, string] | undefined;
    try {
      row = this.#statements.selectSnapshot.get(name);
    } catch (error) {
      throw storeError(error, 'loadSnapshot');
    }
    return row === undefined ? null : { position: row[0], state: JSON.parse(row[1]) as JsonValue };
  }

  async saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
    this.#assertOpen();
    const state = toJsonText(snapshot.state, 'snapshot state');
    try {
      this.#statements.upsertSnapshot.run(name, snapshot.position, state);
      // The snapshot replaced may hold deleted material (the ledger's view keeps wrapped keys):
      // without this, the main file keeps that old page until the WAL is next checkpointed,
      // which may be at close. A busy checkpoint leaves the flag set for the next save.
      if (this.#shredPending && this.#truncateWal()) this.#shredPending = false;
    } catch (error) {
      throw storeError(error, 'saveSnapshot');
    }
  }

  async saveSnapshotRows(
    name: string,
    header: Snapshot,
    rows: Iterable<SnapshotRowChange>,
    base: bigint | null,
  ): Promise<boolean> {
    this.#assertOpen();
    const state = toJsonText(header.state, 'snapshot state');
    try {
      const written = this.#rowSnapshots.save(name, header.position, state, rows, base);
      // As saveSnapshot: a row rewritten without a destroyed key's material leaves the old page in
      // the WAL until it is checkpointed.
      if (written && this.#shredPending && this.#truncateWal()) this.#shredPending = false;
      return written;
    } catch (error) {
      throw storeError(error, 'saveSnapshotRows');
    }
  }

  async loadSnapshotRow(name: string, key: string): Promise<string | null> {
    this.#assertOpen();
    try {
      return this.#statements.selectRow.get(name, key) ?? null;
    } catch (error) {
      throw storeError(error, 'loadSnapshotRow');
    }
  }

  readSnapshotRows(name: string): AsyncIterable<readonly SnapshotRow[]> {
    this.#assertOpen();
    return this.#rowSnapshots.read(name, () => this.#assertOpen());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Appends made before close are written, as they were before group commit deferred them.
    this.#commitPending();
    this.#closed = true;
    this.#poller.close();
    this.#subscriptions.close();
    try {
      this.#db.close();
    } catch (error) {
      throw storeError(error, 'close');
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw storeClosedError();
  }
}
