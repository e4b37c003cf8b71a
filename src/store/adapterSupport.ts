import { Observable, type Subscriber } from 'rxjs';
import { KeyledgerError, VersionConflictError } from '../domain/errors.js';
import type {
  AppendResult,
  EventToAppend,
  ExpectedRevision,
  JsonValue,
  ReadAllOptions,
  RecordedEvent,
  SubscribeOptions,
} from './eventStore.js';

// What the embedded adapters (memory, sqlite) share, so that the append rules and the catch-up
// logic exist once. Not exported from the package: adapters outside src/store have no use for it.

/** Events per page, for readAll and for a subscription's catch-up. */
export const PAGE_SIZE = 1000;

/** Notified reads a LiveSubscriptions runs in microtasks before it yields to the event loop. */
const MAX_MICROTASK_READS = 4096;

/** What the append rules need to know about a stream. */
export interface StreamState {
  /** False when the stream has never been written or was deleted. */
  readonly exists: boolean;
  /** Revision of the last event ever written, kept across a delete; null if never written. */
  readonly lastRevision: bigint | null;
}

export const ABSENT_STREAM: StreamState = { exists: false, lastRevision: null };

/** Where an event id already lives in the store. */
export interface WrittenEvent {
  readonly streamName: string;
  readonly revision: bigint;
  readonly position: bigint;
}

export function storeClosedError(): KeyledgerError {
  return new KeyledgerError('ERR_STORE_CLOSED', 'the event store is closed', {});
}

/** Keeps our own errors as they are; wraps a library's error as ERR_STORE, keeping it as `cause`. */
export function storeError(error: unknown, operation: string): KeyledgerError {
  if (error instanceof KeyledgerError) return error;
  return new KeyledgerError('ERR_STORE', `event store ${operation} failed`, { operation }, { cause: error });
}

function invalid(message: string, details: Record<string, string | number> = {}): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, details);
}

export function assertNever(value: never, what: string): never {
  throw invalid(`unexpected ${what}: ${String(value)}`);
}

export function validateStreamName(stream: string): void {
  if (typeof stream !== 'string' || stream.length === 0) throw invalid('stream name is empty');
}

/** Rejects what no adapter could store faithfully, before anything is written. */
export function validateBatch(stream: string, events: readonly EventToAppend[]): void {
  validateStreamName(stream);
  if (events.length === 0) throw invalid('nothing to append', { stream });
  const ids = new Set<string>();
  for (const event of events) {
    if (typeof event.eventId !== 'string' || event.eventId.length === 0) {
      throw invalid('event id is empty', { stream });
    }
    if (typeof event.type !== 'string' || event.type.length === 0) {
      throw invalid('event type is empty', { stream, eventId: event.eventId });
    }
    if (ids.has(event.eventId))
      throw invalid('event id repeated in one append', { stream, eventId: event.eventId });
    ids.add(event.eventId);
  }
}

/** JSON text of a document; a value JSON cannot hold (a bigint, a cycle) is the caller's mistake. */
export function toJsonText(value: JsonValue, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${what} is not JSON`, { what }, { cause: error });
  }
  // JSON.stringify answers undefined for undefined and functions instead of throwing.
  if (text === undefined) throw invalid(`${what} is not JSON`, { what });
  return text;
}

export function describeExpected(expected: ExpectedRevision): string {
  return typeof expected === 'bigint' ? expected.toString() : expected;
}

function describeState(state: StreamState): string {
  return state.exists && state.lastRevision !== null ? state.lastRevision.toString() : 'no_stream';
}

/** Throws VersionConflictError unless the stream is as `expected` says. */
export function checkExpected(stream: string, expected: ExpectedRevision, state: StreamState): void {
  let ok: boolean;
  if (typeof expected === 'bigint') {
    ok = state.exists && state.lastRevision === expected;
  } else {
    switch (expected) {
      case 'any':
        ok = true;
        break;
      case 'no_stream':
        ok = !state.exists;
        break;
      case 'stream_exists':
        ok = state.exists;
        break;
      default:
        assertNever(expected, 'expected revision');
    }
  }
  if (!ok) throw new VersionConflictError(stream, describeExpected(expected), describeState(state));
}

/** Revision the next event of the stream gets: revisions continue across a delete. */
export function nextRevision(state: StreamState): bigint {
  return state.lastRevision === null ? 0n : state.lastRevision + 1n;
}

/**
 * Decides whether a batch is new or a retry, given where each of its ids already lives (undefined:
 * not written). A retry is a batch written before as one run: same stream, consecutive revisions,
 * same order; it answers the revision and position of the last of them, so a retry whose first
 * attempt did land gets the original result even if other events followed since. Anything in
 * between (some ids written, or written elsewhere or in another order) is a conflict, as the port
 * says: writing the rest would duplicate part of a decision, and refusing lets the caller re-decide.
 */
export function classifyBatch(
  stream: string,
  expected: ExpectedRevision,
  state: StreamState,
  written: readonly (WrittenEvent | undefined)[],
): AppendResult | null {
  if (written.every((found) => found === undefined)) return null;
  const first = written[0];
  const last = written[written.length - 1];
  const isOneRun =
    first !== undefined &&
    written.every(
      (found, i) =>
        found !== undefined && found.streamName === stream && found.revision === first.revision + BigInt(i),
    );
  if (!isOneRun || last === undefined) {
    throw new VersionConflictError(
      stream,
      describeExpected(expected),
      `${describeState(state)}, with some of these event ids written already`,
    );
  }
  return { nextExpectedRevision: last.revision, position: last.position };
}

export function validateReadAll(options: ReadAllOptions): void {
  const { maxCount } = options;
  if (maxCount !== undefined && (!Number.isInteger(maxCount) || maxCount < 0)) {
    throw invalid('maxCount must be a non-negative integer', { maxCount });
  }
}

/** How an adapter reads its events, for readAll and subscriptions. */
export interface EventSource {
  /** Position of the last event in the store, 0n when empty. Throws ERR_STORE_CLOSED once closed. */
  head(): bigint;
  /**
   * Events with `after < position <= upTo` of streams starting with `prefix` (all if undefined),
   * in position order, at most `limit`. Throws ERR_STORE_CLOSED once closed.
   */
  readPage(after: bigint, upTo: bigint, prefix: string | undefined, limit: number): RecordedEvent[];
}

/**
 * readAll over pages. It stops at the head as it was when iteration began, so that a consumer that
 * appends while it reads (a migration, a test) still reaches the end.
 *
 * A hand-written iterator rather than an async generator: a replay of a million events pays the
 * iteration per event, and a generator's `yield` costs several promise turns where this costs one
 * (the page is read synchronously; `next` answers an already-settled promise). It behaves as the
 * generator did: nothing is checked or read before the first `next`, an error ends the iteration,
 * and `return` (a `break` out of `for await`) ends it too.
 */
export function readAllPages(
  source: EventSource,
  options: ReadAllOptions,
): AsyncIterableIterator<RecordedEvent> {
  return new PagedReader(source, options);
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

class PagedReader implements AsyncIterableIterator<RecordedEvent> {
  readonly #source: EventSource;
  readonly #options: ReadAllOptions;
  #page: RecordedEvent[] = [];
  #index = 0;
  #started = false;
  #finished = false;
  /** The page just read was the last one: short, or it used up maxCount. */
  #lastPage = false;
  #upTo = 0n;
  #cursor = 0n;
  #remaining = 0;

  constructor(source: EventSource, options: ReadAllOptions) {
    this.#source = source;
    this.#options = options;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<RecordedEvent> {
    return this;
  }

  next(): Promise<IteratorResult<RecordedEvent, undefined>> {
    try {
      const value = this.#take();
      return Promise.resolve(value === undefined ? DONE : { value, done: false });
    } catch (error) {
      this.#finish();
      return Promise.reject(error);
    }
  }

  return(): Promise<IteratorResult<RecordedEvent, undefined>> {
    this.#finish();
    return Promise.resolve(DONE);
  }

  #finish(): void {
    this.#finished = true;
    this.#page = [];
    this.#index = 0;
  }

  #take(): RecordedEvent | undefined {
    const buffered = this.#page[this.#index];
    if (buffered !== undefined) {
      this.#index++;
      return buffered;
    }
    if (this.#finished) return undefined;
    if (!this.#started) {
      this.#started = true;
      validateReadAll(this.#options);
      this.#upTo = this.#source.head();
      this.#remaining = this.#options.maxCount ?? Number.POSITIVE_INFINITY;
      this.#cursor = this.#options.after ?? 0n;
    }
    if (this.#lastPage || this.#remaining <= 0 || this.#cursor >= this.#upTo) {
      this.#finish();
      return undefined;
    }
    const limit = Math.min(PAGE_SIZE, this.#remaining);
    const page = this.#source.readPage(this.#cursor, this.#upTo, this.#options.streamPrefix, limit);
    const last = page[page.length - 1];
    if (last === undefined) {
      this.#finish();
      return undefined;
    }
    this.#lastPage = page.length < limit;
    this.#cursor = last.position;
    this.#remaining -= page.length;
    this.#page = page;
    this.#index = 1;
    return page[0];
  }
}

interface LiveSubscription {
  readonly subscriber: Subscriber<RecordedEvent>;
  readonly prefix: string | undefined;
  /** Every event at or below this position has been delivered or did not match the filter. */
  cursor: bigint;
  scheduled: boolean;
  active: boolean;
}

/**
 * Catch-up-then-live subscriptions over an EventSource.
 *
 * There is no separate live channel: a notification only makes each subscription read again from
 * its cursor, so catch-up and live are the same query and the handover cannot lose or repeat an
 * event. That relies on positions being handed out in commit order and never reused (a committed
 * event never appears below a position already scanned), which both embedded adapters guarantee.
 *
 * Reads never run inside append. A notification's read runs in a microtask, right after the code
 * that committed: a later macrotask would let whatever is queued before it (I/O callbacks, and
 * V8's idle-time garbage collection tasks, which run between event-loop phases) sit between the
 * append and the apply, and that was the invalidation latency's tail (BENCHMARKS.md, issue 17).
 * Catch-up stays in macrotasks (the first read of a subscription and every page after a full
 * one), and so do notifications after MAX_MICROTASK_READS reads without an event-loop turn in
 * between: a subscriber that appends from its handler can delay I/O only that long.
 *
 * While a notified read waits in a macrotask, every later notified read waits in one too, behind
 * it: Node drains the microtask queue after each macrotask callback, so reads run in microtasks
 * from there would go on (for up to MAX_MICROTASK_READS more) while the waiting subscription sat
 * in the macrotask queue, hundreds of events behind the others (BENCHMARKS.md, issue 17, fourth
 * session).
 */
export class LiveSubscriptions {
  readonly #source: EventSource;
  readonly #onCountChange: (count: number) => void;
  readonly #subscriptions = new Set<LiveSubscription>();
  #closed = false;
  /** Reads run in microtasks since the event loop last turned (see the class comment). */
  #microtaskReads = 0;
  /** Notified reads waiting in a macrotask: until they ran, no read runs in a microtask. */
  #deferred = 0;

  constructor(source: EventSource, onCountChange: (count: number) => void = () => {}) {
    this.#source = source;
    this.#onCountChange = onCountChange;
  }

  get count(): number {
    return this.#subscriptions.size;
  }

  observe(options: SubscribeOptions): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      if (this.#closed) {
        subscriber.error(storeClosedError());
        return;
      }
      const subscription: LiveSubscription = {
        subscriber,
        prefix: options.streamPrefix === '' ? undefined : options.streamPrefix,
        cursor: options.after ?? 0n,
        scheduled: false,
        active: true,
      };
      this.#subscriptions.add(subscription);
      this.#onCountChange(this.#subscriptions.size);
      this.#schedule(subscription);
      return () => this.#remove(subscription);
    });
  }

  /** New events were committed: every subscription reads from its cursor. */
  notify(): void {
    for (const subscription of this.#subscriptions) this.#schedule(subscription, true);
  }

  /** The store failed: every subscription errors. */
  failAll(error: unknown): void {
    for (const subscription of [...this.#subscriptions]) this.#fail(subscription, error);
  }

  /** The store closes: subscriptions complete, and later ones error with ERR_STORE_CLOSED. */
  close(): void {
    this.#closed = true;
    for (const subscription of [...this.#subscriptions]) {
      this.#remove(subscription);
      subscription.subscriber.complete();
    }
  }

  #remove(subscription: LiveSubscription): void {
    subscription.active = false;
    if (this.#subscriptions.delete(subscription)) this.#onCountChange(this.#subscriptions.size);
  }

  #fail(subscription: LiveSubscription, error: unknown): void {
    this.#remove(subscription);
    subscription.subscriber.error(storeError(error, 'subscription'));
  }

  #schedule(subscription: LiveSubscription, soon = false): void {
    if (subscription.scheduled || !subscription.active) return;
    subscription.scheduled = true;
    if (!soon) {
      setImmediate(() => this.#pump(subscription));
    } else if (this.#deferred === 0 && this.#microtaskReads < MAX_MICROTASK_READS) {
      if (this.#microtaskReads++ === 0) setImmediate(() => (this.#microtaskReads = 0));
      queueMicrotask(() => this.#pump(subscription));
    } else {
      this.#deferred++;
      setImmediate(() => {
        this.#deferred--;
        this.#pump(subscription);
      });
    }
  }

  #pump(subscription: LiveSubscription): void {
    // Cleared first: a notification that arrives while this page is delivered schedules another read.
    subscription.scheduled = false;
    if (!subscription.active || this.#closed) return;
    let page: RecordedEvent[];
    let head: bigint;
    try {
      head = this.#source.head();
      page = this.#source.readPage(subscription.cursor, head, subscription.prefix, PAGE_SIZE);
    } catch (error) {
      this.#fail(subscription, error);
      return;
    }
    for (const event of page) {
      subscription.cursor = event.position;
      subscription.subscriber.next(event);
      if (!subscription.active) return;
    }
    if (page.length === PAGE_SIZE) {
      // More to catch up: yield to the event loop before the next page.
      this.#schedule(subscription);
    } else if (head > subscription.cursor) {
      // Everything up to the head was seen, matching or not; events committed later lie above it.
      subscription.cursor = head;
    }
  }
}
