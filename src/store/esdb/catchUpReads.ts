import type { KeyledgerError } from '../../domain/errors.js';
import { storeClosedError, validateReadAll } from '../adapterSupport.js';
import type { ReadAllOptions, RecordedEvent } from '../eventStore.js';
import { AllFollower } from './allFollower.js';
import type { EsdbCalls } from './esdbCalls.js';
import { logHead } from './esdbHeads.js';

/** Events readAll may hold before it stops reading from the server, and resumes below the low mark. */
const READ_AHEAD_HIGH = 1000;
const READ_AHEAD_LOW = 250;

/**
 * The esdb adapter's readAll: a catch-up subscription to `$all` (so the prefix filter runs on the
 * server) read up to the head as it was when iteration began, like the embedded stores.
 */
export class CatchUpReads {
  readonly #calls: EsdbCalls;
  /** readAll iterations in progress, failed with ERR_STORE_CLOSED by closeAll(). */
  readonly #reads = new Set<(error: KeyledgerError) => void>();

  constructor(calls: EsdbCalls) {
    this.#calls = calls;
  }

  async *readAll(options: ReadAllOptions): AsyncGenerator<RecordedEvent> {
    validateReadAll(options);
    this.#calls.assertOpen();
    const maxCount = options.maxCount ?? Number.POSITIVE_INFINITY;
    const after = options.after ?? 0n;
    if (maxCount === 0) return;
    // Like the embedded stores, stop at the head as it was when iteration began.
    const upTo = await this.#calls.call('readAll', () => logHead(this.#calls));
    if (upTo <= after) return;
    yield* this.#catchUp(
      after,
      upTo,
      options.streamPrefix === '' ? undefined : options.streamPrefix,
      maxCount,
    );
  }

  /** The store is closing: every read in progress fails with ERR_STORE_CLOSED. */
  closeAll(): void {
    for (const closing of [...this.#reads]) closing(storeClosedError());
  }

  /**
   * A catch-up subscription read up to `upTo`, with flow control: the client stops reading while
   * READ_AHEAD_HIGH events wait for the consumer. It ends at the first event past `upTo`, or once
   * the server says it caught up or checkpointed at or past `upTo` and the client has emitted
   * everything it buffered before that.
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
      client: this.#calls.client,
      url: this.#calls.url,
      after,
      streamPrefix,
      retryForMs: this.#calls.unavailableTimeoutMs,
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
}
