import type { ExpectedRevision } from './expectedRevision.js';
import {
  DELETED_STREAM_REVISION,
  isMetastream,
  metastreamOf,
  NO_METADATA,
  originalStreamOf,
  parseJsonObject,
  parseStreamMetadata,
  type StreamMetadata,
  withTruncateBefore,
} from './streamMetadata.js';

/**
 * The test server's transaction log: one append-only sequence of records (what `$all` reads) plus a
 * per-stream index, with EventStoreDB's write rules (expected revision, idempotent re-append, soft
 * delete and recreate, tombstone). Kept in memory; it outlives the gRPC server so stop()/start() keep
 * the data.
 */

export interface StoredEvent {
  readonly streamName: string;
  readonly revision: bigint;
  /** Log offset of the record: commit == prepare, never 0, not contiguous. */
  readonly position: bigint;
  /** Lower-case UUID string. */
  readonly id: string;
  readonly type: string;
  readonly contentType: string;
  readonly data: Uint8Array;
  readonly customMetadata: Uint8Array;
  readonly createdMs: number;
}

export interface ProposedEvent {
  readonly id: string;
  readonly type: string;
  readonly contentType: string;
  readonly data: Uint8Array;
  readonly customMetadata: Uint8Array;
}

export type WriteOutcome =
  | {
      readonly kind: 'success';
      /** Undefined when the stream still has no events (an empty append to a missing stream). */
      readonly currentRevision: bigint | undefined;
      /** Undefined when nothing was written (an empty append). */
      readonly position: bigint | undefined;
    }
  | {
      readonly kind: 'wrong_expected_version';
      /** Undefined when the stream does not exist. */
      readonly currentRevision: bigint | undefined;
      readonly expected: ExpectedRevision;
    }
  | { readonly kind: 'stream_deleted' };

export type DeleteOutcome =
  | { readonly kind: 'success'; readonly position: bigint }
  | Exclude<WriteOutcome, { kind: 'success' }>;

export type StreamView =
  | { readonly kind: 'not_found' }
  | { readonly kind: 'deleted' }
  /** Visible events in revision order, after `$tb`, `$maxCount` and `$maxAge`. */
  | { readonly kind: 'events'; readonly events: readonly StoredEvent[] };

interface StreamState {
  /** Index = revision. Soft-deleted events stay (hidden by `$tb`) because revisions continue. */
  readonly events: StoredEvent[];
  readonly revisionById: Map<string, bigint>;
  tombstoned: boolean;
}

type WriteDecision =
  | { readonly kind: 'write'; readonly recreate: boolean }
  | { readonly kind: 'idempotent'; readonly last: StoredEvent }
  | Exclude<WriteOutcome, { kind: 'success' }>;

export type LogListener = (event: StoredEvent) => void;

/** Fixed part of a prepare record in the v2 log format, roughly; positions grow by the record's size. */
const RECORD_OVERHEAD = 92n;
/** The epoch record (not an event) occupies the start of a fresh log, so no event sits at position 0. */
const FIRST_EVENT_POSITION = 113n;
/** Metastreams keep only their latest event visible, as EventStoreDB's metastream metadata says. */
const METASTREAM_METADATA: StreamMetadata = { maxCount: 1n };

export class EventLog {
  readonly #records: StoredEvent[] = [];
  readonly #streams = new Map<string, StreamState>();
  readonly #listeners = new Set<LogListener>();
  #nextPosition = FIRST_EVENT_POSITION;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Every record in log order, system events and tombstones included: what `$all` holds. */
  get records(): readonly StoredEvent[] {
    return this.#records;
  }

  /** Called synchronously for each record written, in log order (live subscriptions). */
  onWrite(listener: LogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  append(streamName: string, expected: ExpectedRevision, proposed: readonly ProposedEvent[]): WriteOutcome {
    const decision = this.#decide(
      streamName,
      expected,
      proposed.map((event) => event.id),
    );
    switch (decision.kind) {
      case 'idempotent':
        return { kind: 'success', currentRevision: decision.last.revision, position: decision.last.position };
      case 'write':
        return this.#write(streamName, proposed, decision.recreate);
      case 'wrong_expected_version':
      case 'stream_deleted':
        return decision;
      default: {
        const unreachable: never = decision;
        throw new TypeError(`unknown write decision ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /**
   * Soft delete: the server writes new metadata `{"$tb": long.MaxValue}` (replacing the old metadata).
   * Reads then say stream-not-found; the next append recreates the stream with revisions continuing.
   */
  softDelete(streamName: string, expected: ExpectedRevision): DeleteOutcome {
    const decision = this.#decide(streamName, expected, []);
    if (decision.kind === 'wrong_expected_version' || decision.kind === 'stream_deleted') return decision;
    const metastream = metastreamOf(streamName);
    // Since 24.x the server refuses to soft delete a stream that has neither events nor metadata.
    if (this.lastRevision(streamName) < 0n && this.lastRevision(metastream) < 0n) {
      return { kind: 'wrong_expected_version', currentRevision: undefined, expected };
    }
    const data = withTruncateBefore(undefined, DELETED_STREAM_REVISION);
    const written = this.#record(metastream, this.lastRevision(metastream) + 1n, {
      id: crypto.randomUUID(),
      type: '$metadata',
      contentType: 'application/json',
      data,
      customMetadata: new Uint8Array(),
    });
    return { kind: 'success', position: written.position };
  }

  /** Hard delete: a `$streamDeleted` record at revision long.MaxValue; the name can never be used again. */
  tombstone(streamName: string, expected: ExpectedRevision): DeleteOutcome {
    const decision = this.#decide(streamName, expected, []);
    if (decision.kind === 'wrong_expected_version' || decision.kind === 'stream_deleted') return decision;
    const written = this.#record(streamName, DELETED_STREAM_REVISION, {
      id: crypto.randomUUID(),
      type: '$streamDeleted',
      contentType: 'application/octet-stream',
      data: new Uint8Array(),
      customMetadata: new Uint8Array(),
    });
    return { kind: 'success', position: written.position };
  }

  /** A tombstoned stream's metastream is gone with it: reads and writes of `$$<stream>` fail too. */
  isTombstoned(streamName: string): boolean {
    const own = this.#streams.get(streamName)?.tombstoned ?? false;
    return own || (isMetastream(streamName) && this.isTombstoned(originalStreamOf(streamName)));
  }

  /** What a stream read sees: not found, deleted (tombstone), or the events its metadata leaves visible. */
  streamView(streamName: string): StreamView {
    if (this.isTombstoned(streamName)) return { kind: 'deleted' };
    const state = this.#streams.get(streamName);
    if (state === undefined || state.events.length === 0) return { kind: 'not_found' };
    const metadata = this.metadataOf(streamName);
    if (metadata.truncateBefore === DELETED_STREAM_REVISION) return { kind: 'not_found' };
    return { kind: 'events', events: state.events.filter((event) => this.isVisible(event, metadata)) };
  }

  /** The metadata currently in force for a stream (metastreams have their own fixed metadata). */
  metadataOf(streamName: string): StreamMetadata {
    if (isMetastream(streamName)) return METASTREAM_METADATA;
    const latest = this.#latest(metastreamOf(streamName));
    return latest === undefined ? NO_METADATA : parseStreamMetadata(latest.data);
  }

  /** Whether `event` is visible to stream reads under `metadata` (evaluated now, for `$maxAge`). */
  isVisible(event: StoredEvent, metadata: StreamMetadata): boolean {
    if (metadata.truncateBefore !== undefined && event.revision < metadata.truncateBefore) return false;
    if (metadata.maxCount !== undefined) {
      const last = this.lastRevision(event.streamName);
      if (event.revision <= last - metadata.maxCount) return false;
    }
    if (metadata.maxAgeSeconds !== undefined) {
      const ageMs = this.#now() - event.createdMs;
      if (BigInt(Math.max(0, Math.floor(ageMs))) > metadata.maxAgeSeconds * 1000n) return false;
    }
    return true;
  }

  #decide(streamName: string, expected: ExpectedRevision, ids: readonly string[]): WriteDecision {
    if (this.isTombstoned(streamName)) return { kind: 'stream_deleted' };
    const state = this.#streams.get(streamName);
    const last = this.lastRevision(streamName);
    const current = last < 0n ? undefined : last;
    const softDeleted = this.metadataOf(streamName).truncateBefore === DELETED_STREAM_REVISION;
    const wrong = { kind: 'wrong_expected_version', currentRevision: current, expected } as const;
    switch (expected.kind) {
      case 'any':
        return this.#idempotentById(state, ids, wrong) ?? { kind: 'write', recreate: softDeleted };
      case 'stream_exists': {
        if (softDeleted) return { kind: 'stream_deleted' };
        const idempotent = this.#idempotentById(state, ids, wrong);
        if (idempotent !== undefined) return idempotent;
        return current === undefined ? wrong : { kind: 'write', recreate: false };
      }
      case 'no_stream':
        if (softDeleted) return { kind: 'write', recreate: true };
        return this.#atRevision(state, -1n, last, ids, softDeleted) ?? wrong;
      case 'revision':
        return this.#atRevision(state, expected.revision, last, ids, softDeleted) ?? wrong;
      default: {
        const unreachable: never = expected;
        throw new TypeError(`unknown expected revision ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /**
   * Exact expected revision (NO_STREAM is -1): writable when it equals the last revision; when it is
   * behind, the write is an idempotent retry if the events after it carry exactly these ids.
   */
  #atRevision(
    state: StreamState | undefined,
    expected: bigint,
    last: bigint,
    ids: readonly string[],
    softDeleted: boolean,
  ): WriteDecision | undefined {
    if (expected === last) return { kind: 'write', recreate: softDeleted };
    if (expected > last || state === undefined || ids.length === 0) return undefined;
    const first = Number(expected + 1n);
    const matched = ids.every((id, i) => state.events[first + i]?.id === id);
    const lastMatched = state.events[first + ids.length - 1];
    return matched && lastMatched !== undefined ? { kind: 'idempotent', last: lastMatched } : undefined;
  }

  /** ANY (and STREAM_EXISTS): a retry is recognised by its first event id already being in the stream. */
  #idempotentById(
    state: StreamState | undefined,
    ids: readonly string[],
    corrupted: WriteDecision,
  ): WriteDecision | undefined {
    const firstId = ids[0];
    if (state === undefined || firstId === undefined) return undefined;
    const start = state.revisionById.get(firstId);
    if (start === undefined) return undefined;
    const first = Number(start);
    const matched = ids.every((id, i) => state.events[first + i]?.id === id);
    const lastMatched = state.events[first + ids.length - 1];
    if (matched && lastMatched !== undefined) return { kind: 'idempotent', last: lastMatched };
    // Partly written before: EventStoreDB calls this corrupted idempotency and refuses the write.
    return corrupted;
  }

  #write(streamName: string, proposed: readonly ProposedEvent[], recreate: boolean): WriteOutcome {
    const last = this.lastRevision(streamName);
    if (proposed.length === 0) {
      return { kind: 'success', currentRevision: last < 0n ? undefined : last, position: undefined };
    }
    if (recreate) this.#undelete(streamName, last + 1n);
    let written: StoredEvent | undefined;
    for (const [i, event] of proposed.entries()) {
      written = this.#record(streamName, last + 1n + BigInt(i), this.#recreatingMetadata(streamName, event));
    }
    return { kind: 'success', currentRevision: written?.revision, position: written?.position };
  }

  /** Recreating a soft-deleted stream: its metadata gets `$tb` = the first new revision, other keys kept. */
  #undelete(streamName: string, firstNewRevision: bigint): void {
    const metastream = metastreamOf(streamName);
    this.#record(metastream, this.lastRevision(metastream) + 1n, {
      id: crypto.randomUUID(),
      type: '$metadata',
      contentType: 'application/json',
      data: withTruncateBefore(this.#latest(metastream)?.data, firstNewRevision),
      customMetadata: new Uint8Array(),
    });
  }

  /** Writing new metadata for a soft-deleted stream undeletes it too: the server rewrites its `$tb`. */
  #recreatingMetadata(streamName: string, event: ProposedEvent): ProposedEvent {
    if (!isMetastream(streamName)) return event;
    const original = originalStreamOf(streamName);
    if (this.metadataOf(original).truncateBefore !== DELETED_STREAM_REVISION) return event;
    if (parseJsonObject(event.data) === undefined) return event;
    return { ...event, data: withTruncateBefore(event.data, this.lastRevision(original) + 1n) };
  }

  #record(streamName: string, revision: bigint, event: ProposedEvent): StoredEvent {
    const stored: StoredEvent = {
      streamName,
      revision,
      position: this.#nextPosition,
      id: event.id.toLowerCase(),
      type: event.type,
      contentType: event.contentType,
      data: event.data,
      customMetadata: event.customMetadata,
      createdMs: this.#now(),
    };
    const size =
      RECORD_OVERHEAD +
      BigInt(Buffer.byteLength(streamName) + Buffer.byteLength(event.type)) +
      BigInt(event.data.length + event.customMetadata.length);
    this.#nextPosition += size;
    this.#records.push(stored);
    const state = this.#stateOf(streamName);
    if (revision === DELETED_STREAM_REVISION) {
      state.tombstoned = true;
    } else {
      state.events.push(stored);
      state.revisionById.set(stored.id, revision);
    }
    for (const listener of [...this.#listeners]) listener(stored);
    return stored;
  }

  #stateOf(streamName: string): StreamState {
    let state = this.#streams.get(streamName);
    if (state === undefined) {
      state = { events: [], revisionById: new Map(), tombstoned: false };
      this.#streams.set(streamName, state);
    }
    return state;
  }

  /** The last revision written to the stream (hidden or not), -1 when none. */
  lastRevision(streamName: string): bigint {
    return BigInt((this.#streams.get(streamName)?.events.length ?? 0) - 1);
  }

  #latest(streamName: string): StoredEvent | undefined {
    const events = this.#streams.get(streamName)?.events;
    return events?.[events.length - 1];
  }
}
