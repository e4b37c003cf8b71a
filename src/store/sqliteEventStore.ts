import { closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Observable } from 'rxjs';
import { KeyledgerError } from '../domain/errors.js';
import {
  ABSENT_STREAM,
  checkExpected,
  classifyBatch,
  type EventSource,
  LiveSubscriptions,
  nextRevision,
  readAllPages,
  type StreamState,
  storeClosedError,
  storeError,
  toJsonText,
  validateBatch,
  validateStreamName,
  type WrittenEvent,
} from './adapterSupport.js';
import type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  JsonObject,
  JsonValue,
  ReadAllOptions,
  RecordedEvent,
  Snapshot,
  SubscribeOptions,
} from './eventStore.js';

/** Bump with a migration whenever the tables change; a file from a newer keyledger is refused. */
const SCHEMA_VERSION = 1;

/**
 * How long a statement waits for another process's write lock before failing with SQLITE_BUSY.
 * Appends hold the lock for a few statements only, so this is only reached if something is stuck.
 */
const BUSY_TIMEOUT_MS = 5000;

const DEFAULT_POLL_INTERVAL_MS = 20;

// position is the rowid: AUTOINCREMENT so that a position is never handed out twice, even after
// the newest events were deleted; otherwise a subscriber past that position would miss the reuse.
// streams keeps one row per stream ever written, so that revisions continue after a delete.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  stream TEXT NOT NULL,
  revision INTEGER NOT NULL,
  event_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  metadata TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream, revision)
);
CREATE TABLE IF NOT EXISTS streams (
  name TEXT PRIMARY KEY,
  last_revision INTEGER NOT NULL,
  deleted INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  state TEXT NOT NULL
) WITHOUT ROWID;
`;

const EVENT_COLUMNS = 'position, stream, revision, event_id, type, data, metadata, recorded_at';

type EventRow = [
  position: bigint,
  stream: string,
  revision: bigint,
  eventId: string,
  type: string,
  data: string,
  metadata: string,
  recordedAt: bigint,
];

function toRecorded(row: EventRow): RecordedEvent {
  return {
    streamName: row[1],
    revision: row[2],
    position: row[0],
    eventId: row[3],
    type: row[4],
    data: JSON.parse(row[5]) as JsonObject,
    metadata: JSON.parse(row[6]) as JsonObject,
    recordedAt: new Date(Number(row[7])),
  };
}

interface EncodedEvent {
  readonly eventId: string;
  readonly type: string;
  readonly data: string;
  readonly metadata: string;
}

interface AppendOutcome {
  readonly result: AppendResult;
  readonly wrote: boolean;
}

export interface SqliteEventStoreOptions {
  /** How often to look for events written by other processes (default 20 ms). */
  readonly pollIntervalMs?: number;
}

function configure(db: Database.Database): void {
  // busy_timeout comes from the constructor's `timeout` option.
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') {
    throw new KeyledgerError('ERR_STORE', `sqlite refused WAL mode (journal_mode is ${String(mode)})`, {
      journalMode: String(mode),
    });
  }
  // A lost commit could be a key the ledger already handed out: every commit reaches the disk.
  db.pragma('synchronous = FULL');
  // Deleting a stream is crypto-shredding: freed cells and pages are zeroed, not left readable.
  db.pragma('secure_delete = ON');
}

/**
 * The ledger's files are private to its user: a missing folder is created 0700 and a missing
 * database file 0600 before sqlite opens it (sqlite would create it per umask, usually 0644, and
 * gives the -wal and -shm files the main file's mode). An existing folder or file is not changed,
 * since its mode may be an operator's choice (a folder shared by a service group); one that
 * group or others can access gets a warning naming it. POSIX modes only.
 */
function prepareFiles(file: string): void {
  const folder = dirname(file);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  if (!existsSync(file)) {
    try {
      closeSync(openSync(file, 'wx', 0o600));
    } catch (error) {
      // Another process created it meanwhile: it is theirs to have made right; checked below.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  if (process.platform === 'win32') return;
  warnIfShared(folder, 0o022, 'writable', 'could replace the ledger file with another (an older copy)');
  for (const name of [file, `${file}-wal`, `${file}-shm`]) {
    warnIfShared(name, 0o077, 'accessible', 'can read the ledger (wrapped keys, history)');
  }
}

/** Warned once per path and process: a long-lived process opening the store again stays quiet. */
const warned = new Set<string>();

function warnIfShared(path: string, bits: number, what: string, consequence: string): void {
  let full: number;
  try {
    full = statSync(path).mode;
  } catch {
    return;
  }
  const mode = full & 0o777;
  // A sticky folder (/tmp) lets no one but the owner replace what is in it.
  const sticky = (full & 0o1000) !== 0;
  if ((mode & bits) === 0 || sticky || warned.has(path)) return;
  warned.add(path);
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  process.emitWarning(
    `${path} is ${what} by group or others (mode ${octal}): they ${consequence}; chmod ${bits === 0o022 ? '700' : '600'} it`,
    { code: 'KEYLEDGER_FILE_MODE', detail: `keyledger creates its folder 0700 and its files 0600` },
  );
}

function readUserVersion(db: Database.Database): number {
  return Number(db.pragma('user_version', { simple: true }));
}

function unsupportedSchema(version: number): KeyledgerError {
  return new KeyledgerError(
    'ERR_STORE',
    `the ledger database has schema version ${version}; this keyledger knows version ${SCHEMA_VERSION}`,
    { schemaVersion: version, supportedVersion: SCHEMA_VERSION },
  );
}

function migrate(db: Database.Database): void {
  if (readUserVersion(db) === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Checked again under the write lock: another process may have created the schema meanwhile.
    const version = readUserVersion(db);
    if (version === SCHEMA_VERSION) return;
    if (version !== 0) throw unsupportedSchema(version);
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * The embedded default: one sqlite file, usable by several processes at once.
 *
 * Writes are serialised by sqlite's write lock (appends run in BEGIN IMMEDIATE), so positions are
 * handed out in commit order: once a reader has seen position p, no later commit can land below p.
 * Subscriptions rely on that: they re-read from their cursor when this process appends and when a
 * poll sees the head move (another process appended), and never miss or repeat an event.
 */
export class SqliteEventStore implements EventStore {
  readonly #db: Database.Database;
  readonly #pollIntervalMs: number;
  #closed = false;
  #pollTimer: NodeJS.Timeout | undefined;
  /** Highest head seen by this process, to tell when another process has appended. */
  #knownHead = 0n;
  /**
   * A stream was deleted (crypto-shredding) and a snapshot written before the deletion may still
   * hold its data: the next snapshot saved replaces it, and is checkpointed out of the WAL at once.
   */
  #shredPending = false;

  readonly #findEvent: Database.Statement<[string], [string, bigint, bigint]>;
  readonly #streamState: Database.Statement<[string], [bigint, bigint]>;
  readonly #insertEvent: Database.Statement<[string, bigint, string, string, string, string, number]>;
  readonly #upsertStream: Database.Statement<[string, bigint]>;
  readonly #selectStream: Database.Statement<[string, bigint], EventRow>;
  readonly #selectHead: Database.Statement<[], bigint>;
  readonly #selectPage: Database.Statement<[bigint, bigint, number], EventRow>;
  readonly #selectPrefixPage: Database.Statement<[bigint, bigint, number, Buffer, number], EventRow>;
  readonly #deleteEvents: Database.Statement<[string]>;
  readonly #markDeleted: Database.Statement<[string]>;
  readonly #selectSnapshot: Database.Statement<[string], [bigint, string]>;
  readonly #upsertSnapshot: Database.Statement<[string, bigint, string]>;
  readonly #appendTransaction: Database.Transaction<
    (stream: string, events: readonly EncodedEvent[], expected: ExpectedRevision) => AppendOutcome
  >;
  readonly #deleteTransaction: Database.Transaction<(stream: string) => boolean>;

  readonly #source: EventSource = {
    head: () => {
      this.#assertOpen();
      try {
        return this.#selectHead.get() ?? 0n;
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
            ? this.#selectPage.all(after, upTo, limit)
            : this.#selectPrefixPage.all(after, upTo, Buffer.byteLength(prefix), Buffer.from(prefix), limit);
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
      configure(db);
      migrate(db);
      return new SqliteEventStore(db, pollIntervalMs);
    } catch (error) {
      db?.close();
      throw storeError(error, 'open');
    }
  }

  private constructor(db: Database.Database, pollIntervalMs: number) {
    this.#db = db;
    this.#pollIntervalMs = pollIntervalMs;
    this.#findEvent = db
      .prepare<[string], [string, bigint, bigint]>(
        'SELECT stream, revision, position FROM events WHERE event_id = ?',
      )
      .raw(true)
      .safeIntegers(true);
    this.#streamState = db
      .prepare<[string], [bigint, bigint]>('SELECT last_revision, deleted FROM streams WHERE name = ?')
      .raw(true)
      .safeIntegers(true);
    this.#insertEvent = db
      .prepare<[string, bigint, string, string, string, string, number]>(
        'INSERT INTO events (stream, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .safeIntegers(true);
    this.#upsertStream = db.prepare<[string, bigint]>(
      `INSERT INTO streams (name, last_revision, deleted) VALUES (?, ?, 0)
       ON CONFLICT (name) DO UPDATE SET last_revision = excluded.last_revision, deleted = 0`,
    );
    this.#selectStream = db
      .prepare<[string, bigint], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision`,
      )
      .raw(true)
      .safeIntegers(true);
    this.#selectHead = db
      .prepare<[], bigint>('SELECT coalesce(max(position), 0) FROM events')
      .pluck(true)
      .safeIntegers(true);
    this.#selectPage = db
      .prepare<[bigint, bigint, number], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`,
      )
      .raw(true)
      .safeIntegers(true);
    this.#selectPrefixPage = db
      .prepare<[bigint, bigint, number, Buffer, number], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events
         WHERE position > ? AND position <= ? AND substr(CAST(stream AS BLOB), 1, ?) = ?
         ORDER BY position LIMIT ?`,
      )
      .raw(true)
      .safeIntegers(true);
    this.#deleteEvents = db.prepare<[string]>('DELETE FROM events WHERE stream = ?');
    this.#markDeleted = db.prepare<[string]>('UPDATE streams SET deleted = 1 WHERE name = ?');
    this.#selectSnapshot = db
      .prepare<[string], [bigint, string]>('SELECT position, state FROM snapshots WHERE name = ?')
      .raw(true)
      .safeIntegers(true);
    this.#upsertSnapshot = db.prepare<[string, bigint, string]>(
      `INSERT INTO snapshots (name, position, state) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, state = excluded.state
       WHERE excluded.position >= snapshots.position`,
    );
    this.#appendTransaction = db.transaction(this.#appendInTransaction);
    this.#deleteTransaction = db.transaction(this.#deleteInTransaction);
    this.#subscriptions = new LiveSubscriptions(this.#source, (count) => this.#subscribersChanged(count));
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
    let outcome: AppendOutcome;
    try {
      // IMMEDIATE takes the write lock before the checks, so no other process can write between
      // the expected-revision check and the insert.
      outcome = this.#appendTransaction.immediate(stream, encoded, expected);
    } catch (error) {
      throw storeError(error, 'append');
    }
    if (outcome.wrote) {
      if (outcome.result.position > this.#knownHead) this.#knownHead = outcome.result.position;
      this.#subscriptions.notify();
    }
    return outcome.result;
  }

  readonly #appendInTransaction = (
    stream: string,
    events: readonly EncodedEvent[],
    expected: ExpectedRevision,
  ): AppendOutcome => {
    const state = this.#readStreamState(stream);
    const written = events.map((event): WrittenEvent | undefined => {
      const row = this.#findEvent.get(event.eventId);
      return row === undefined ? undefined : { streamName: row[0], revision: row[1], position: row[2] };
    });
    const retried = classifyBatch(stream, expected, state, written);
    if (retried !== null) return { result: retried, wrote: false };
    checkExpected(stream, expected, state);
    const recordedAt = Date.now();
    let revision = nextRevision(state) - 1n;
    let position = 0n;
    for (const event of events) {
      revision += 1n;
      const { lastInsertRowid } = this.#insertEvent.run(
        stream,
        revision,
        event.eventId,
        event.type,
        event.data,
        event.metadata,
        recordedAt,
      );
      position = BigInt(lastInsertRowid);
    }
    this.#upsertStream.run(stream, revision);
    return { result: { nextExpectedRevision: revision, position }, wrote: true };
  };

  #readStreamState(stream: string): StreamState {
    const row = this.#streamState.get(stream);
    if (row === undefined) return ABSENT_STREAM;
    return { exists: row[1] === 0n, lastRevision: row[0] };
  }

  async readStream(
    stream: string,
    options: { readonly fromRevision?: bigint } = {},
  ): Promise<readonly RecordedEvent[]> {
    this.#assertOpen();
    validateStreamName(stream);
    try {
      return this.#selectStream.all(stream, options.fromRevision ?? 0n).map(toRecorded);
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
      if (this.#deleteTransaction.immediate(stream)) {
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

  readonly #deleteInTransaction = (stream: string): boolean => {
    const state = this.#readStreamState(stream);
    if (!state.exists) return false;
    this.#deleteEvents.run(stream);
    this.#markDeleted.run(stream);
    return true;
  };

  async loadSnapshot(name: string): Promise<Snapshot | null> {
    this.#assertOpen();
    let row: [bigint, string] | undefined;
    try {
      row = this.#selectSnapshot.get(name);
    } catch (error) {
      throw storeError(error, 'loadSnapshot');
    }
    return row === undefined ? null : { position: row[0], state: JSON.parse(row[1]) as JsonValue };
  }

  async saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
    this.#assertOpen();
    const state = toJsonText(snapshot.state, 'snapshot state');
    try {
      this.#upsertSnapshot.run(name, snapshot.position, state);
      // The snapshot replaced may hold deleted material (the ledger's view keeps wrapped keys):
      // without this, the main file keeps that old page until the WAL is next checkpointed,
      // which may be at close. A busy checkpoint leaves the flag set for the next save.
      if (this.#shredPending && this.#truncateWal()) this.#shredPending = false;
    } catch (error) {
      throw storeError(error, 'saveSnapshot');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopPolling();
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

  #subscribersChanged(count: number): void {
    // Ref'd on purpose: a process whose only work is a subscription must stay alive for it.
    if (count > 0 && this.#pollTimer === undefined && !this.#closed) {
      this.#pollTimer = setInterval(this.#poll, this.#pollIntervalMs);
    } else if (count === 0) {
      this.#stopPolling();
    }
  }

  #stopPolling(): void {
    if (this.#pollTimer !== undefined) clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  readonly #poll = (): void => {
    let head: bigint;
    try {
      head = this.#source.head();
    } catch (error) {
      this.#subscriptions.failAll(error);
      return;
    }
    if (head > this.#knownHead) {
      this.#knownHead = head;
      this.#subscriptions.notify();
    }
  };
}
