import type { Observable } from 'rxjs';
import type { JsonObject, JsonValue } from '../domain/json.js';

export type { JsonObject, JsonValue } from '../domain/json.js';

/**
 * What an append must find. `any`: no check. `no_stream`: the stream has no events (a deleted
 * stream counts as absent). `stream_exists`: it has at least one. A bigint: the revision of its last
 * event (revisions start at 0).
 */
export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | bigint;

export interface EventToAppend {
  /** A UUID, deterministic for a given command so that a retried append is idempotent. */
  readonly eventId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
}

export interface RecordedEvent {
  readonly streamName: string;
  /** Position of the event within its stream, from 0. */
  readonly revision: bigint;
  /** Position in the whole store; increasing, never 0, not necessarily contiguous. */
  readonly position: bigint;
  readonly eventId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
  readonly recordedAt: Date;
}

export interface AppendResult {
  /** Revision of the last event of the stream after the append. */
  readonly nextExpectedRevision: bigint;
  /** Global position of the last event written (or found, for an idempotent re-append). */
  readonly position: bigint;
}

export interface ReadAllOptions {
  /** Only events whose position is strictly greater than this (default: from the start). */
  readonly after?: bigint;
  /** Only events of streams whose name starts with this. */
  readonly streamPrefix?: string;
  /** Stop after this many events. */
  readonly maxCount?: number;
}

export interface SubscribeOptions {
  /** Deliver events strictly after this position (default: from the start). */
  readonly after?: bigint;
  readonly streamPrefix?: string;
}

export interface Snapshot {
  /** The global position the snapshot state includes (every event up to and including it). */
  readonly position: bigint;
  readonly state: JsonValue;
}

/** One row of a row snapshot (EventStore.saveSnapshotRows). */
export interface SnapshotRow {
  readonly key: string;
  readonly value: string;
}

/** A row to write (`value` a string) or to remove (`value` null). */
export interface SnapshotRowChange {
  readonly key: string;
  readonly value: string | null;
}

/** Rows read at once by readSnapshotRows (default). */
export const SNAPSHOT_ROW_BATCH = 2048;

/**
 * The ledger's storage port. Adapters: memory, sqlite (embedded default), esdb. All pass the same
 * contract suite (test/contract/eventStore.contract.ts); nothing outside src/store knows which one
 * is in use.
 *
 * Errors: a failed expected-revision check is a VersionConflictError (ERR_VERSION_CONFLICT); any
 * other adapter failure is a KeyledgerError ERR_STORE with the library's error as `cause`; use after
 * close is ERR_STORE_CLOSED.
 */
export interface EventStore {
  /**
   * Appends atomically: all events or none. Re-appending events whose ids are already written to
   * the stream as one run (same ids, same order, consecutive revisions) succeeds without writing them
   * again and returns the original result, whatever the expected revision (EventStoreDB: at another
   * expected revision than the first attempt's, only for batches this process sent; see esdbEventStore.ts). A batch only some of whose ids are
   * already written (a retry that grew), or whose ids are written elsewhere or in another order, is
   * neither a retry nor new: it is a VersionConflictError and writes nothing, so the caller
   * re-decides. An empty batch, one that repeats an event id, or data that JSON cannot hold is
   * ERR_INVALID_ARGUMENT.
   */
  append(stream: string, events: readonly EventToAppend[], expected: ExpectedRevision): Promise<AppendResult>;
  /** The events of one stream in revision order; an absent or deleted stream reads as empty. */
  readStream(stream: string, options?: { readonly fromRevision?: bigint }): Promise<readonly RecordedEvent[]>;
  /** Events of all streams in position order, lazily in pages. */
  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent>;
  /**
   * Catch-up then live: every event after `after` in position order, then new ones as they are
   * written, by this process or another one on the same store. Never completes by itself (close()
   * completes it); errors if the store fails. Unsubscribing releases its resources.
   */
  subscribe(options?: SubscribeOptions): Observable<RecordedEvent>;
  /**
   * Position of the last event in the store (0n when empty). The store's own bookkeeping does not
   * count: snapshots, and EventStoreDB's system streams (`$…`), are not events of the port.
   */
  headPosition(): Promise<bigint>;
  /**
   * Deletes a stream (crypto-shredding of key material): it reads as empty afterwards, and an
   * append to it starts it again with revisions continuing. memory and sqlite erase the events at
   * once (they vanish from readAll too); EventStoreDB keeps them in $all until a scavenge.
   */
  deleteStream(stream: string): Promise<void>;
  /** Read models persist their state with the position it includes. */
  loadSnapshot(name: string): Promise<Snapshot | null>;
  /**
   * Stores a snapshot under `name` unless the one stored there has a higher position (an equal one
   * is replaced): a process that lags behind never puts back state a later snapshot left out, such
   * as the material of a key destroyed since. The comparison and the write are one step.
   */
  saveSnapshot(name: string, snapshot: Snapshot): Promise<void>;
  /**
   * Row snapshots: a read model too large for one document is kept as a header (the snapshot
   * `name`, read with loadSnapshot) and rows by key, so that one row can be read alone and a
   * save writes only the rows that changed. Header and rows are written in one step:
   * `base` null replaces every row (unless the stored header has a higher position, as
   * saveSnapshot); `base` a position applies `rows` over the stored rows only if the stored header
   * has exactly that position (another writer's save in between makes it write nothing). True if
   * written. sqlite keeps one table row per key; memory and EventStoreDB keep one document per
   * snapshot behind the same calls (see their adapters).
   */
  saveSnapshotRows(
    name: string,
    header: Snapshot,
    rows: Iterable<SnapshotRowChange>,
    base: bigint | null,
  ): Promise<boolean>;
  /**
   * Whether loadSnapshotRow reads the one row without reading the others: true for sqlite (a table
   * row per key), false for memory and EventStoreDB (one document per snapshot, read whole for each
   * row). Callers that would read many rows one by one (the as-of series, src/audit/asOfSnapshots.ts)
   * use row snapshots only where it holds; every store still reads what any store wrote.
   */
  readonly snapshotRowReadAlone: boolean;
  /** One row of a row snapshot, or null. */
  loadSnapshotRow(name: string, key: string): Promise<string | null>;
  /** Every row of a row snapshot, in batches (in no particular order); empty if there is none. */
  readSnapshotRows(name: string): AsyncIterable<readonly SnapshotRow[]>;
  close(): Promise<void>;
}
