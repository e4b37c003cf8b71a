import { LRUCache } from 'lru-cache';
import { isKeyledgerError, KeyledgerError, VersionConflictError } from '../domain/errors.js';
import { retryPolicyFor } from '../journal/retryPolicy.js';
import type { AppendResult, EventToAppend, ExpectedRevision, RecordedEvent } from '../store/eventStore.js';
import { ForwardingEventStore } from '../store/forwardingEventStore.js';
import { chainedMetadata, eventHash } from './hashChain.js';

/** Streams whose tail this process remembers; a miss costs one indexed read, never correctness. */
const CACHED_STREAMS = 4096;

/** Where an append lands: the exact revision it must find, and the hash of the event there. */
interface Tail {
  readonly expected: bigint | 'no_stream';
  readonly prevHash: string | null;
}

/** Called after every append this store chained (the ledger's automatic checkpoints hook in here). */
export type AfterAppend = (stream: string, result: AppendResult) => Promise<void>;

/**
 * The revision of the newest checkpoint this process knows, recorded in an event about to be
 * appended to `stream` (metadata `checkpoint`, schemaVersion 3); null: none (or not for this stream).
 */
export type CheckpointMark = (stream: string) => Promise<bigint | null>;

/**
 * The one place the ledger's hash chain is written: an EventStore that, on every append, sets each
 * event's `metadata.prevHash` to the hash of the event before it in its stream (and
 * `schemaVersion` to 2). Ledger.open installs it in front of the caller's store, so every writer
 * in the ledger (admin, system keys, rewrap, destruction, checkpoints) is chained without knowing.
 *
 * The link is found from the expected revision: a bigint r links to the event at r (which the
 * append's own check guarantees is the stream's last), `no_stream` to nothing. An append with `any`
 * or `stream_exists` reads the stream's tail and appends with that exact revision instead, trying
 * again if another writer got there first, so the chain stays linear without a lock. A retried
 * append (same ids, same expected revision) gets the same link, and the store recognises it as a
 * retry whatever its metadata says, so idempotency is kept.
 *
 * Hashes are remembered only as read back from the store, never as computed before a write: a
 * retry the store answered from the original write may differ in metadata (occurredAt) from what
 * this process built, and only the stored event is what the next link must name.
 */
export class ChainingEventStore extends ForwardingEventStore {
  /** `${revision} ${stream}` → hash of the stored event there (immutable once written). */
  readonly #hashes = new LRUCache<string, string>({ max: CACHED_STREAMS });
  /** stream → its last revision as last seen: where to read its tail for an `any` append. */
  readonly #tails = new LRUCache<string, bigint>({ max: CACHED_STREAMS });
  #afterAppend: AfterAppend | null = null;
  #checkpointMark: CheckpointMark | null = null;

  /** Installs what names the newest known checkpoint in every appended event (src/audit/checkpointer.ts). */
  useCheckpointMark(mark: CheckpointMark | null): void {
    this.#checkpointMark = mark;
  }

  /** Installs the hook run after each chained append; it must not throw (the append has happened). */
  onAppended(hook: AfterAppend | null): void {
    this.#afterAppend = hook;
  }

  override async append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    // Nothing to link: the store reports the empty batch as it always does.
    if (events.length === 0) return this.inner.append(stream, events, expected);
    const mark = (await this.#checkpointMark?.(stream)) ?? null;
    const result = await this.#appendLinked(stream, expected, (prevHash) =>
      this.#link(stream, events, prevHash, mark),
    );
    await this.#afterAppend?.(stream, result);
    return result;
  }

  /**
   * Appends one event built once its link is known (a checkpoint's MAC covers its prevHash).
   * `expected` must be exact: the caller has read the stream and decides against it.
   */
  async appendBuilt(
    stream: string,
    expected: bigint | 'no_stream',
    build: (prevHash: string | null) => Promise<EventToAppend>,
  ): Promise<AppendResult> {
    // What `build` returns is final (a checkpoint's MAC covers its metadata): no mark is added.
    return this.#appendLinked(stream, expected, async (prevHash) =>
      this.#link(stream, [await build(prevHash)], prevHash, null),
    );
  }

  async #appendLinked(
    stream: string,
    expected: ExpectedRevision,
    batch: (prevHash: string | null) => Promise<EventToAppend[]> | EventToAppend[],
  ): Promise<AppendResult> {
    const once = async (): Promise<AppendResult> => {
      const tail = await this.#tailFor(stream, expected);
      const result = await this.inner.append(stream, await batch(tail.prevHash), tail.expected);
      this.#tails.set(stream, result.nextExpectedRevision);
      return result;
    };
    if (typeof expected === 'bigint' || expected === 'no_stream') return once();
    // `any` / `stream_exists` promise the caller no check, so a race lost on the exact revision we
    // chose is ours to retry, from where the conflict says the stream is.
    const policy = retryPolicyFor(this);
    for (let attempt = 1; ; attempt++) {
      try {
        return await policy.timed(once);
      } catch (error) {
        if (!isKeyledgerError(error, 'ERR_VERSION_CONFLICT') || attempt >= policy.maxDecisions) throw error;
        const actual = error.details.actual;
        if (typeof actual === 'string' && /^[0-9]+$/.test(actual)) this.#tails.set(stream, BigInt(actual));
        // An adapter that does not say where the stream is: read it whole (this sets the hint).
        else if ((await this.#readLast(stream)) === null) this.#tails.delete(stream);
        await policy.backOff(attempt);
      }
    }
  }

  #link(
    stream: string,
    events: readonly EventToAppend[],
    prevHash: string | null,
    mark: bigint | null,
  ): EventToAppend[] {
    let link = prevHash;
    try {
      return events.map((event) => {
        const linked: EventToAppend = { ...event, metadata: chainedMetadata(event.metadata, link, mark) };
        link = eventHash({ streamName: stream, ...linked });
        return linked;
      });
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        `an event for ${stream} holds a value JSON cannot`,
        { stream },
        { cause: error },
      );
    }
  }

  async #tailFor(stream: string, expected: ExpectedRevision): Promise<Tail> {
    if (expected === 'no_stream') return { expected, prevHash: null };
    if (typeof expected === 'bigint') {
      const prevHash = await this.#hashAt(stream, expected);
      if (prevHash === null) {
        // The stream has no event at that revision, so the append could not pass its check.
        const last = (await this.inner.readStream(stream)).at(-1);
        throw new VersionConflictError(stream, expected.toString(), last?.revision.toString() ?? 'no_stream');
      }
      return { expected, prevHash };
    }
    if (expected === 'stream_exists') {
      const last = await this.#readLast(stream);
      if (last === null) throw new VersionConflictError(stream, expected, 'no_stream');
      return { expected: last.revision, prevHash: this.#hashOf(last) };
    }
    // `any`: from the remembered tail if there is one. Otherwise append as the stream's first
    // event: that is right if it has none, and if it has, the conflict names its last revision, so
    // the next try reads one event instead of the whole stream.
    const hint = this.#tails.get(stream);
    if (hint === undefined) return { expected: 'no_stream', prevHash: null };
    const last = (await this.inner.readStream(stream, { fromRevision: hint })).at(-1);
    if (last === undefined) {
      // Deleted, or the hint is wrong: probe as above.
      this.#tails.delete(stream);
      return { expected: 'no_stream', prevHash: null };
    }
    this.#tails.set(stream, last.revision);
    return { expected: last.revision, prevHash: this.#hashOf(last) };
  }

  async #hashAt(stream: string, revision: bigint): Promise<string | null> {
    const cached = this.#hashes.get(`${revision} ${stream}`);
    if (cached !== undefined) return cached;
    const events = await this.inner.readStream(stream, { fromRevision: revision });
    const found = events[0];
    if (found === undefined || found.revision !== revision) return null;
    return this.#hashOf(found);
  }

  /** The whole stream's last event: for `stream_exists` (no ledger writer uses it) and as a fallback. */
  async #readLast(stream: string): Promise<RecordedEvent | null> {
    const last = (await this.inner.readStream(stream)).at(-1);
    if (last === undefined) return null;
    this.#tails.set(stream, last.revision);
    return last;
  }

  #hashOf(event: RecordedEvent): string {
    const key = `${event.revision} ${event.streamName}`;
    let hash = this.#hashes.get(key);
    if (hash === undefined) {
      hash = eventHash(event);
      this.#hashes.set(key, hash);
    }
    return hash;
  }

  override async deleteStream(stream: string): Promise<void> {
    // A stream written again after a delete continues its revisions with a fresh chain.
    this.#tails.delete(stream);
    await this.inner.deleteStream(stream);
  }
}
