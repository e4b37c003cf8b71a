import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AppendExpectedRevision,
  BACKWARDS,
  END,
  type RecordedEvent as EsdbRecordedEvent,
  EventStoreDBClient,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  type Position,
  type ResolvedEvent,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { Observable, type Subscriber } from 'rxjs';
import { KeyledgerError, VersionConflictError } from '../domain/errors.js';
import {
  assertNever,
  describeExpected,
  storeClosedError,
  toJsonText,
  validateBatch,
  validateReadAll,
  validateStreamName,
} from './adapterSupport.js';
import { AllFollower } from './esdb/allFollower.js';
import { parseEsdbConnectionString } from './esdb/connectionString.js';
import { conflictFrom, isTransient, toStoreError } from './esdb/esdbErrors.js';
import {
  isBookkeepingStream,
  positionOf,
  SNAPSHOT_EVENT_TYPE,
  snapshotStreamOf,
  toRecordedEvent,
} from './esdb/esdbRecords.js';
import { RecentWrites } from './esdb/recentWrites.js';
import type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  JsonValue,
  ReadAllOptions,
  RecordedEvent,
  Snapshot,
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

const DEFAULT_UNAVAILABLE_TIMEOUT_MS = 5000;
const DEFAULT_RESUBSCRIBE_TIMEOUT_MS = 60_000;
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 1000;
/** Events readAll may hold before it stops reading from the server, and resumes below the low mark. */
const READ_AHEAD_HIGH = 1000;
const READ_AHEAD_LOW = 250;
/** Events per backwards page when headPosition looks past the store's own bookkeeping. */
const HEAD_PAGE = 100;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${name} must be a positive number of milliseconds`, {
      [name]: String(value),
    });
  }
  return ms;
}

function toClientExpected(expected: ExpectedRevision): AppendExpectedRevision {
  if (typeof expected === 'bigint') {
    if (expected < 0n) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'an expected revision cannot be negative', {
        expected: expected.toString(),
      });
    }
    return expected;
  }
  switch (expected) {
    case 'any':
    case 'no_stream':
    case 'stream_exists':
      return expected;
    default:
      return assertNever(expected, 'expected revision');
  }
}

function isMissingStream(error: unknown): boolean {
  return error instanceof StreamNotFoundError || error instanceof StreamDeletedError;
}

interface LiveSubscription {
  readonly subscriber: Subscriber<RecordedEvent>;
  readonly follower: AllFollower;
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
 */
export class EsdbEventStore implements EventStore {
  readonly #client: EventStoreDBClient;
  readonly #url: string;
  readonly #unavailableTimeoutMs: number;
  readonly #resubscribeTimeoutMs: number;
  readonly #live = new Set<LiveSubscription>();
  /** readAll iterations in progress, failed with ERR_STORE_CLOSED by close(). */
  readonly #reads = new Set<(error: KeyledgerError) => void>();
  readonly #recent = new RecentWrites();
  /** Snapshot streams whose $maxCount this process has set. */
  readonly #trimmedSnapshots = new Set<string>();
  #closed = false;

  /**
   * Creates the client for a connection string (`esdb://…`, `esdb+discover://…`). Nothing is
   * contacted yet: the client connects on the first call, which retries for
   * `unavailableTimeoutMs` and then fails with ERR_STORE_UNAVAILABLE naming the (redacted) URL.
   */
  static open(connectionString: string, options: EsdbEventStoreOptions = {}): EsdbEventStore {
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
      client = EventStoreDBClient.connectionString(connection.connectionString);
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
    return new EsdbEventStore(client, connection.redacted, unavailableTimeoutMs, resubscribeTimeoutMs);
  }

  private constructor(
    client: EventStoreDBClient,
    url: string,
    unavailableTimeoutMs: number,
    resubscribeTimeoutMs: number,
  ) {
    this.#client = client;
    this.#url = url;
    this.#unavailableTimeoutMs = unavailableTimeoutMs;
    this.#resubscribeTimeoutMs = resubscribeTimeoutMs;
  }

  /** The server's URL without credentials. */
  get url(): string {
    return this.#url;
  }

  async append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    this.#assertOpen();
    validateBatch(stream, events);
    toClientExpected(expected);
    for (const event of events) {
      if (!UUID.test(event.eventId)) {
        throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'event id must be a UUID', {
          stream,
          eventId: event.eventId,
        });
      }
      // Checked here so that an unstorable batch fails before anything is sent.
      toJsonText(event.data, 'event data');
      toJsonText(event.metadata, 'event metadata');
    }
    const proposed = events.map((event) =>
      jsonEvent({
        id: event.eventId,
        type: event.type,
        data: event.data as Record<string, unknown>,
        metadata: event.metadata as Record<string, unknown>,
      }),
    );
    return this.#call('append', () => this.#appendOnce(stream, events, proposed, expected));
  }

  async #appendOnce(
    stream: string,
    events: readonly EventToAppend[],
    proposed: readonly ReturnType<typeof jsonEvent>[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    // Only an exact revision can need a look first (see RecentWrites); for the other forms the
    // server's answer, or its conflict looked into below, is already the port's.
    const ids = events.map((event) => event.eventId.toLowerCase());
    if (typeof expected === 'bigint' && this.#recent.needsLook(stream, ids)) {
      const found = await this.#lookBeforeAppend(stream, events, expected);
      if (found !== null) return found;
    }
    this.#recent.noteAttempt(stream, ids);
    try {
      const result = await this.#client.appendToStream(stream, [...proposed], {
        expectedRevision: toClientExpected(expected),
      });
      if (!result.success) {
        // Only with throwOnAppendFailure=false in the connection string.
        throw new VersionConflictError(
          stream,
          describeExpected(expected),
          String(result.nextExpectedRevision),
        );
      }
      this.#recent.noteWritten(stream);
      const position =
        result.position?.commit ?? (await this.#positionOf(stream, result.nextExpectedRevision));
      return { nextExpectedRevision: result.nextExpectedRevision, position };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        // The first attempt of this very batch may have landed since the look above.
        const late = await this.#lookBeforeAppend(stream, events, expected);
        if (late !== null) return late;
        throw conflictFrom(error, stream, expected);
      }
      if (error instanceof StreamDeletedError && (await this.#isSoftDeleted(stream))) {
        // Deleted (softly) since the look above: for the port that is an absent stream.
        throw new VersionConflictError(stream, describeExpected(expected), 'no_stream', { cause: error });
      }
      throw error;
    }
  }

  /**
   * What the server does not decide the port's way, decided from the stream's last events. Before
   * an append at an exact revision that RecentWrites flags: (1) a deleted stream has no events, yet
   * EventStoreDB accepts its old last revision (and recreates it); the port calls that a conflict.
   * (2) The server recognises a retry only at the expected revision of its first attempt, so a
   * batch that already forms the stream's last events is answered from them, whatever the
   * revision. After a conflict, whatever the form: the batch may be such a retry, or partly
   * written already (a retry that grew), which stays a conflict. ANY, NO_STREAM and STREAM_EXISTS
   * retries the server recognises by itself (by event id). A delete racing with the look, and
   * what other processes sent or deleted, are left to the server.
   */
  async #lookBeforeAppend(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult | null> {
    let tail: RecordedEvent[];
    try {
      tail = await this.#readFully(
        this.#client.readStream(stream, { direction: BACKWARDS, fromRevision: END, maxCount: events.length }),
      );
    } catch (error) {
      // Absent or softly deleted; a tombstoned stream (StreamDeletedError) is refused below, as ERR_STORE.
      if (!(error instanceof StreamNotFoundError)) throw error;
      if (typeof expected === 'bigint' || expected === 'stream_exists') {
        throw new VersionConflictError(stream, describeExpected(expected), 'no_stream', { cause: error });
      }
      return null;
    }
    tail.reverse();
    const ids = events.map((event) => event.eventId.toLowerCase());
    const written = tail.map((event) => event.eventId.toLowerCase());
    const last = tail[tail.length - 1];
    if (last !== undefined && written.length === ids.length && written.every((id, i) => id === ids[i])) {
      return { nextExpectedRevision: last.revision, position: last.position };
    }
    const batch = new Set(ids);
    if (written.some((id) => batch.has(id))) {
      throw new VersionConflictError(
        stream,
        describeExpected(expected),
        `${last?.revision.toString() ?? 'no_stream'}, with some of these event ids written already`,
      );
    }
    return null;
  }

  async #isSoftDeleted(stream: string): Promise<boolean> {
    try {
      await this.#readRaw(this.#client.readStream(stream, { maxCount: 1 }));
      return false;
    } catch (error) {
      return error instanceof StreamNotFoundError;
    }
  }

  async #positionOf(stream: string, revision: bigint): Promise<bigint> {
    const [event] = await this.#readFully(
      this.#client.readStream(stream, { fromRevision: revision, maxCount: 1 }),
    );
    if (event !== undefined) return event.position;
    throw new KeyledgerError('ERR_STORE', `EventStoreDB at ${this.#url} lost the event it just wrote`, {
      stream,
      revision: revision.toString(),
    });
  }

  async readStream(
    stream: string,
    options: { readonly fromRevision?: bigint } = {},
  ): Promise<readonly RecordedEvent[]> {
    this.#assertOpen();
    validateStreamName(stream);
    const from = options.fromRevision;
    return this.#call('readStream', async () => {
      try {
        return await this.#readFully(
          this.#client.readStream(stream, {
            direction: FORWARDS,
            fromRevision: from === undefined || from <= 0n ? START : from,
          }),
        );
      } catch (error) {
        if (isMissingStream(error)) return [];
        throw error;
      }
    });
  }

  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    return this.#readAll(options);
  }

  async *#readAll(options: ReadAllOptions): AsyncGenerator<RecordedEvent> {
    validateReadAll(options);
    this.#assertOpen();
    const maxCount = options.maxCount ?? Number.POSITIVE_INFINITY;
    const after = options.after ?? 0n;
    if (maxCount === 0) return;
    // Like the embedded stores, stop at the head as it was when iteration began.
    const upTo = await this.#call('readAll', () => this.#logHead());
    if (upTo <= after) return;
    yield* this.#catchUp(
      after,
      upTo,
      options.streamPrefix === '' ? undefined : options.streamPrefix,
      maxCount,
    );
  }

  /**
   * A catch-up subscription (so the prefix filter runs on the server) read up to `upTo`, with
   * flow control: the client stops reading while READ_AHEAD_HIGH events wait for the consumer.
   * It ends at the first event past `upTo`, or once the server says it caught up or checkpointed at
   * or past `upTo` and the client has emitted everything it buffered before that.
   */
  async *#catchUp(
    after: bigint,
    upTo: bigint,
    streamPrefix: string | undefined,
    maxCount: number,
  ): AsyncGenerator<RecordedEvent> {
    let queue: RecordedEvent[] = [];
    let head = 0;
    let done = false;
    let ending = false;
    let failure: KeyledgerError | null = null;
    let wake: (() => void) | null = null;
    const notify = (): void => {
      const resolve = wake;
      wake = null;
      resolve?.();
    };
    const finish = (): void => {
      done = true;
      follower.stop();
      notify();
    };
    const maybeFinish = (): void => {
      if (ending && follower.buffered === 0) finish();
    };
    const follower: AllFollower = new AllFollower({
      client: this.#client,
      url: this.#url,
      after,
      streamPrefix,
      retryForMs: this.#unavailableTimeoutMs,
      handlers: {
        event: (recorded) => {
          if (done) return;
          if (recorded.position > upTo) {
            finish();
            return;
          }
          queue.push(recorded);
          if (queue.length - head >= READ_AHEAD_HIGH) follower.pause();
          if (recorded.position === upTo) finish();
          else maybeFinish();
          notify();
        },
        skipped: (position) => {
          if (position >= upTo) finish();
          else maybeFinish();
        },
        caughtUp: () => {
          ending = true;
          maybeFinish();
        },
        checkpoint: (position) => {
          if (position >= upTo) ending = true;
          maybeFinish();
        },
        failed: (error) => {
          failure = error;
          done = true;
          notify();
        },
      },
    });
    const closing = (error: KeyledgerError): void => {
      failure = error;
      queue = [];
      head = 0;
      finish();
    };
    this.#reads.add(closing);
    follower.start();
    try {
      let yielded = 0;
      while (yielded < maxCount) {
        if (head < queue.length) {
          const next = queue[head] as RecordedEvent;
          head += 1;
          if (head === queue.length) {
            queue = [];
            head = 0;
          }
          if (queue.length - head < READ_AHEAD_LOW) follower.resume();
          yielded += 1;
          yield next;
          continue;
        }
        if (failure !== null) throw failure;
        if (done) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      this.#reads.delete(closing);
      follower.stop();
    }
  }

  subscribe(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      if (this.#closed) {
        subscriber.error(storeClosedError());
        return;
      }
      const follower = new AllFollower({
        client: this.#client,
        url: this.#url,
        after: options.after ?? 0n,
        streamPrefix: options.streamPrefix === '' ? undefined : options.streamPrefix,
        retryForMs: this.#resubscribeTimeoutMs,
        handlers: {
          event: (recorded) => subscriber.next(recorded),
          failed: (error) => {
            this.#live.delete(live);
            subscriber.error(error);
          },
        },
      });
      const live: LiveSubscription = { subscriber, follower };
      this.#live.add(live);
      follower.start();
      return () => {
        this.#live.delete(live);
        follower.stop();
      };
    });
  }

  /**
   * Position of the last event in the store, not counting EventStoreDB's own streams (`$…`) nor
   * the adapter's snapshot streams: what a subscriber of the ledger can wait for.
   */
  async headPosition(): Promise<bigint> {
    this.#assertOpen();
    return this.#call('headPosition', async () => {
      let from: typeof END | Position = END;
      for (;;) {
        const page = await this.#readRaw(
          this.#client.readAll({ direction: BACKWARDS, fromPosition: from, maxCount: HEAD_PAGE }),
        );
        // A backwards read starts at (and includes) its position: the previous page's last event.
        const start = from;
        const older = page.filter((event) => start === END || positionOf(event).commit < start.commit);
        const found = older.find((event) => !isBookkeepingStream(event.streamId));
        if (found !== undefined) return positionOf(found).commit;
        const oldest = older[older.length - 1];
        if (oldest === undefined) return 0n;
        from = positionOf(oldest);
      }
    });
  }

  /** Position of the last record in `$all`, whatever its stream; 0n when the log is empty. */
  async #logHead(): Promise<bigint> {
    const [last] = await this.#readRaw(
      this.#client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }),
    );
    return last === undefined ? 0n : positionOf(last).commit;
  }

  /**
   * A soft delete: the stream reads as empty and can be written again, revisions continuing. Its
   * events stay in `$all` until a scavenge; crypto-shredding on EventStoreDB needs one (see
   * docs/operations.md).
   */
  async deleteStream(stream: string): Promise<void> {
    this.#assertOpen();
    validateStreamName(stream);
    await this.#call('deleteStream', async () => {
      this.#recent.noteDeleted(stream);
      try {
        await this.#client.deleteStream(stream);
      } catch (error) {
        // Absent or already deleted: nothing to do, as the port says.
        if (isMissingStream(error) || error instanceof WrongExpectedVersionError) return;
        throw error;
      }
    });
  }

  async loadSnapshot(name: string): Promise<Snapshot | null> {
    this.#assertOpen();
    return this.#call('loadSnapshot', async () => {
      const last = await this.#lastSnapshotEvent(snapshotStreamOf(name));
      return last === undefined ? null : this.#toSnapshot(last);
    });
  }

  async #lastSnapshotEvent(stream: string): Promise<RecordedEvent | undefined> {
    try {
      const [last] = await this.#readFully(
        this.#client.readStream(stream, { direction: BACKWARDS, fromRevision: END, maxCount: 1 }),
      );
      return last;
    } catch (error) {
      if (isMissingStream(error)) return undefined;
      throw error;
    }
  }

  #toSnapshot(recorded: RecordedEvent): Snapshot {
    const { position, state } = recorded.data as { position?: unknown; state?: JsonValue };
    if (recorded.type !== SNAPSHOT_EVENT_TYPE || typeof position !== 'string' || !/^\d+$/.test(position)) {
      throw new KeyledgerError(
        'ERR_STORE',
        `snapshot stream ${recorded.streamName} holds an unreadable event`,
        {
          stream: recorded.streamName,
          revision: recorded.revision.toString(),
        },
      );
    }
    return { position: BigInt(position), state: state === undefined ? null : state };
  }

  async saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
    this.#assertOpen();
    toJsonText(snapshot.state, 'snapshot state');
    const stream = snapshotStreamOf(name);
    const event = jsonEvent({
      type: SNAPSHOT_EVENT_TYPE,
      data: { position: snapshot.position.toString(), state: snapshot.state } as Record<string, unknown>,
    });
    await this.#call('saveSnapshot', async () => {
      // Only the latest snapshot is ever read; the server may drop older ones (at a scavenge).
      if (!this.#trimmedSnapshots.has(stream)) {
        await this.#client.setStreamMetadata(stream, { maxCount: 1 });
        this.#trimmedSnapshots.add(stream);
      }
      // A newer snapshot is never replaced (a lagging process must not put back what a later one,
      // say a crypto-shredding, removed): compare, then append at the revision compared against.
      for (;;) {
        const last = await this.#lastSnapshotEvent(stream);
        if (last !== undefined && this.#toSnapshot(last).position > snapshot.position) return;
        try {
          await this.#client.appendToStream(stream, event, {
            expectedRevision: last === undefined ? NO_STREAM : last.revision,
          });
          return;
        } catch (error) {
          if (!(error instanceof WrongExpectedVersionError)) throw error;
        }
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const live of [...this.#live]) {
      live.follower.stop();
      live.subscriber.complete();
    }
    this.#live.clear();
    for (const closing of [...this.#reads]) closing(storeClosedError());
    try {
      await this.#client.dispose();
    } catch (error) {
      throw toStoreError(error, this.#url, 'close');
    }
  }

  /**
   * Every event of a bounded read. Reads are always consumed to their end: leaving one early
   * leaves its gRPC call paused and open, and the client's dispose() then waits for it forever.
   */
  async #readRaw(read: AsyncIterable<ResolvedEvent>): Promise<EsdbRecordedEvent[]> {
    const found: EsdbRecordedEvent[] = [];
    for await (const resolved of read) {
      if (resolved.event !== undefined) found.push(resolved.event);
    }
    return found;
  }

  async #readFully(read: AsyncIterable<ResolvedEvent>): Promise<RecordedEvent[]> {
    return (await this.#readRaw(read)).map(toRecordedEvent);
  }

  /**
   * Runs one call, trying again (with backoff) while the server cannot be reached, for up to
   * `unavailableTimeoutMs`; then, or on any other failure, converts the error at this edge. Every
   * call is safe to repeat: reads change nothing and appends are idempotent by event id.
   */
  async #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      this.#assertOpen();
      try {
        return await run();
      } catch (error) {
        if (this.#closed) throw storeClosedError();
        const waited = Date.now() - started;
        const pause = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
        if (!isTransient(error) || waited + pause > this.#unavailableTimeoutMs) {
          throw toStoreError(error, this.#url, operation, waited);
        }
        await sleep(pause);
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw storeClosedError();
  }
}
