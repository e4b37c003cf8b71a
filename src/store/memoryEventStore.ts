import type { Observable } from 'rxjs';
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
  toJsonText,
  validateBatch,
  validateStreamName,
  type WrittenEvent,
} from './adapterSupport.js';
import { DocumentSnapshotRows } from './documentSnapshotRows.js';
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
  SnapshotRow,
  SnapshotRowChange,
  SubscribeOptions,
} from './eventStore.js';

interface MemoryStream extends StreamState {
  /** The stream's live events in revision order; emptied by a delete. */
  readonly events: RecordedEvent[];
}

/** A copy the caller cannot change afterwards, and that readers cannot change either. */
function frozenCopy<T extends JsonValue>(value: T, what: string): T {
  return deepFreeze(JSON.parse(toJsonText(value, what)) as T);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Index of the first event whose position is greater than `after` (events in position order). */
function firstAfter(events: readonly RecordedEvent[], after: bigint): number {
  let low = 0;
  let high = events.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const event = events[mid];
    if (event !== undefined && event.position <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * The whole store in this process's memory, for tests and in-process library use. It keeps the
 * sqlite adapter's semantics: events are copied through JSON (so what a reader sees is what sqlite
 * would give back) and frozen, positions are never reused, a delete erases the events.
 */
export class MemoryEventStore implements EventStore {
  /** Every live event in position order. */
  #all: RecordedEvent[] = [];
  readonly #streams = new Map<string, MemoryStream>();
  readonly #byId = new Map<string, RecordedEvent>();
  readonly #snapshots = new Map<string, Snapshot>();
  /** Row snapshots as one document each (documentSnapshotRows.ts): tests and small in-process ledgers. */
  readonly #rows = new DocumentSnapshotRows(this);
  /** A row is read with its whole document (EventStore.snapshotRowReadAlone). */
  readonly snapshotRowReadAlone = false;
  #lastPosition = 0n;
  #closed = false;
  readonly #source: EventSource = {
    head: () => {
      this.#assertOpen();
      return this.#all[this.#all.length - 1]?.position ?? 0n;
    },
    readPage: (after, upTo, prefix, limit) => {
      this.#assertOpen();
      const page: RecordedEvent[] = [];
      for (let i = firstAfter(this.#all, after); i < this.#all.length && page.length < limit; i++) {
        const event = this.#all[i];
        if (event === undefined || event.position > upTo) break;
        if (prefix === undefined || event.streamName.startsWith(prefix)) page.push(event);
      }
      return page;
    },
  };
  readonly #subscriptions = new LiveSubscriptions(this.#source);

  async append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    this.#assertOpen();
    validateBatch(stream, events);
    const existing = this.#streams.get(stream);
    const state = existing ?? ABSENT_STREAM;
    const written: (WrittenEvent | undefined)[] = events.map((event) => this.#byId.get(event.eventId));
    const retried = classifyBatch(stream, expected, state, written);
    if (retried !== null) return retried;
    checkExpected(stream, expected, state);

    // Everything that can fail (JSON) happens before the first mutation, so the append is atomic.
    const now = Date.now();
    let revision = nextRevision(state) - 1n;
    let position = this.#lastPosition;
    const recorded = events.map((event): RecordedEvent => {
      revision += 1n;
      position += 1n;
      return Object.freeze({
        streamName: stream,
        revision,
        position,
        eventId: event.eventId,
        type: event.type,
        data: frozenCopy<JsonObject>(event.data, 'event data'),
        metadata: frozenCopy<JsonObject>(event.metadata, 'event metadata'),
        recordedAt: new Date(now),
      });
    });

    const streamEvents = existing?.events ?? [];
    streamEvents.push(...recorded);
    for (const event of recorded) {
      this.#all.push(event);
      this.#byId.set(event.eventId, event);
    }
    this.#lastPosition = position;
    this.#streams.set(stream, { exists: true, lastRevision: revision, events: streamEvents });
    this.#subscriptions.notify();
    return { nextExpectedRevision: revision, position };
  }

  async readStream(
    stream: string,
    options: { readonly fromRevision?: bigint } = {},
  ): Promise<readonly RecordedEvent[]> {
    this.#assertOpen();
    validateStreamName(stream);
    const events = this.#streams.get(stream)?.events ?? [];
    const from = options.fromRevision;
    return from === undefined ? [...events] : events.filter((event) => event.revision >= from);
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

  async deleteStream(stream: string): Promise<void> {
    this.#assertOpen();
    validateStreamName(stream);
    const state = this.#streams.get(stream);
    if (state === undefined || !state.exists) return;
    const erased = new Set(state.events);
    for (const event of state.events) this.#byId.delete(event.eventId);
    this.#all = this.#all.filter((event) => !erased.has(event));
    this.#streams.set(stream, { exists: false, lastRevision: state.lastRevision, events: [] });
  }

  async loadSnapshot(name: string): Promise<Snapshot | null> {
    this.#assertOpen();
    return this.#snapshots.get(name) ?? null;
  }

  async saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
    this.#assertOpen();
    const stored = this.#snapshots.get(name);
    if (stored !== undefined && stored.position > snapshot.position) return;
    this.#snapshots.set(
      name,
      Object.freeze({ position: snapshot.position, state: frozenCopy(snapshot.state, 'snapshot state') }),
    );
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
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriptions.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw storeClosedError();
  }
}
