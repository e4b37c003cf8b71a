import { timingSafeEqual } from 'node:crypto';
import { KeyledgerError } from '../domain/errors.js';
import { CHAINED_SCHEMA_VERSION } from '../domain/events.js';
import { decideAndAppend, expectedAfter } from '../journal/decideAndAppend.js';
import type { JournalEvent, OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { AppendResult, RecordedEvent } from '../store/eventStore.js';
import { appendAnchor } from './anchorFile.js';
import type { ChainingEventStore } from './chainingEventStore.js';
import {
  CHECKPOINT_EVENT_TYPE,
  type Checkpoint,
  checkpointData,
  checkpointMacMessage,
  parseCheckpoint,
} from './checkpointFormat.js';
import { MAX_CHECKPOINT_HEADS, missingCheckpoint, readCheckpointHeads } from './checkpointHeads.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { eventHash } from './hashChain.js';

/** Default of LedgerOptions.checkpointEvery: ledger events written between automatic checkpoints. */
export const DEFAULT_CHECKPOINT_EVERY = 1000;

/** ERR_INVALID_ARGUMENT unless `every` is a whole number ≥ 0 (undefined: the default). */
export function assertCheckpointEvery(every: number | undefined): void {
  if (every !== undefined && !(Number.isSafeInteger(every) && every >= 0)) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'checkpointEvery must be a whole number ≥ 0', {
      checkpointEvery: every,
    });
  }
}

export interface CheckpointResult {
  /** Global position of the LedgerCheckpointed event. */
  readonly position: bigint;
  /** Its revision in the checkpoint stream. */
  readonly revision: bigint;
  readonly previousPosition: bigint;
  /** Every event of the ledger up to here is committed to. */
  readonly coveredPosition: bigint;
  /** How many stream heads it records (streams written since the previous checkpoint). */
  readonly streams: number;
  readonly stkIdentity: string;
  /** The checkpoint event's hash: with `revision`, what `verify --anchor` takes. */
  readonly hash: string;
}

interface LastCheckpoint {
  readonly revision: bigint;
  readonly coveredPosition: bigint;
  /** The stored event (null when this process wrote it: its MAC is its own). */
  readonly event: RecordedEvent | null;
}

export interface CheckpointerDeps {
  readonly store: ChainingEventStore;
  /** The checkpoint stream, its hint snapshot and the ledger's prefix. */
  readonly names: Pick<StreamNames, 'prefix' | 'checkpoints' | 'checkpointHint'>;
  readonly keys: CheckpointMacKeys;
  readonly now: () => Date;
  /** Automatic checkpoints: after this many ledger events since the last one; 0 turns them off. */
  readonly every: number;
  /** Who automatic checkpoints are recorded as. */
  readonly automaticContext: () => OperationContext;
  /** The rollback anchor file every checkpoint is also appended to (src/audit/anchorFile.ts). */
  readonly anchorFile?: string;
}

/**
 * Appends checkpoints: on request, and automatically once `every` ledger events were written since
 * the last one (from any process: the events are counted in the store, not in this process's writes).
 *
 * An automatic checkpoint runs inside the append that crossed the line, after that append has
 * committed; it adds one read of the events since the last checkpoint and one append, once every
 * `every` events. Its failure never fails that append: the next append tries again.
 */
export class Checkpointer {
  readonly #d: CheckpointerDeps;
  /** The newest checkpoint this process knows of; undefined until first looked up. */
  #last: LastCheckpoint | null | undefined;
  /** Checkpoints are written one at a time per process (a second caller waits for the first). */
  #queue: Promise<unknown> = Promise.resolve();
  #automaticRunning = false;
  /** Ledger events counted since the newest checkpoint (`from`), up to position `upTo`. */
  #counted: { from: bigint; upTo: bigint; events: number } | null = null;
  /** The revision of the newest checkpoint whose MAC this process checked. */
  #checkedRevision: bigint | null = null;
  /** The newest checkpoint as its hint names it (#newestMark): marks and due checks only. */
  #mark: Pick<LastCheckpoint, 'revision' | 'coveredPosition'> | null | undefined;

  constructor(deps: CheckpointerDeps) {
    assertCheckpointEvery(deps.every);
    this.#d = deps;
  }

  /**
   * Checkpoints everything written so far (several checkpoints if more than MAX_CHECKPOINT_HEADS
   * streams changed). Returns the last one written, or null if nothing but checkpoints was written
   * since the previous one.
   */
  checkpoint(context: OperationContext): Promise<CheckpointResult | null> {
    const run = this.#queue.then(() => this.#checkpointAll(context));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * The chaining store's mark (CheckpointMark): every event appended names the newest checkpoint
   * this process knows, so a checkpoint stream that loses checkpoints contradicts the events after
   * them. Never for the checkpoint stream itself (a checkpoint's MAC covers its metadata as built).
   * A failed lookup marks nothing: the append must not fail for it.
   */
  readonly markFor = async (stream: string): Promise<bigint | null> => {
    if (stream === this.#d.names.checkpoints) return null;
    try {
      return (await this.#newestMark())?.revision ?? null;
    } catch {
      return null;
    }
  };

  /** The chaining store's hook: an automatic checkpoint when one is due. Never throws. */
  readonly afterAppend = async (stream: string, result: AppendResult): Promise<void> => {
    if (this.#d.every === 0 || stream === this.#d.names.checkpoints || this.#automaticRunning) return;
    this.#automaticRunning = true;
    try {
      const last = await this.#newestMark();
      if (!(await this.#dueAfter(last?.coveredPosition ?? 0n, result.position))) return;
      await this.checkpoint(this.#d.automaticContext());
    } catch {
      // The append it follows has committed; a failing provider or store shows on the next try,
      // and `keyledger checkpoint` reports it.
    } finally {
      this.#automaticRunning = false;
    }
  };

  /**
   * Whether `every` ledger events (checkpoints aside) follow `from`. Every event takes at least one
   * position, so a distance below `every` answers without a read (memory and sqlite number events
   * one by one); beyond it, events are counted incrementally, since EventStoreDB positions are byte
   * offsets and a thousand positions may be three events.
   */
  async #dueAfter(from: bigint, head: bigint): Promise<boolean> {
    const every = this.#d.every;
    if (head - from < BigInt(every)) return false;
    if (this.#counted?.from !== from) this.#counted = { from, upTo: from, events: 0 };
    const counted = this.#counted;
    for await (const event of this.#d.store.readAll({
      after: counted.upTo,
      streamPrefix: this.#d.names.prefix,
    })) {
      counted.upTo = event.position;
      if (event.streamName !== this.#d.names.checkpoints) counted.events += 1;
      if (counted.events >= every) return true;
    }
    return false;
  }

  async #checkpointAll(context: OperationContext): Promise<CheckpointResult | null> {
    let latest: CheckpointResult | null = null;
    for (;;) {
      const written = await this.#checkpointOnce(context);
      if (written === null) return latest;
      latest = written;
      if (written.streams < MAX_CHECKPOINT_HEADS) return latest;
    }
  }

  async #checkpointOnce(context: OperationContext): Promise<CheckpointResult | null> {
    const written = await this.#appendCheckpoint(context);
    if (written === null) return null;
    const stream = this.#d.names.checkpoints;
    // The hash of the event as stored (a retry the store answered from an earlier write may
    // differ from what this process built): what verify and the anchor file compare.
    const [stored] = await this.#d.store.readStream(stream, { fromRevision: written.revision });
    const hash = stored?.revision === written.revision ? eventHash(stored) : null;
    if (hash === null) {
      throw new KeyledgerError(
        'ERR_STORE',
        `the checkpoint ${stream}@${written.revision} cannot be read back`,
        {
          stream,
          revision: written.revision.toString(),
        },
      );
    }
    if (this.#d.anchorFile !== undefined) {
      await appendAnchor(this.#d.anchorFile, {
        prefix: this.#d.names.prefix,
        revision: written.revision,
        hash,
        position: written.position,
        coveredPosition: written.coveredPosition,
        at: this.#d.now(),
      });
    }
    return { ...written, hash };
  }

  async #appendCheckpoint(context: OperationContext): Promise<Omit<CheckpointResult, 'hash'> | null> {
    const stream = this.#d.names.checkpoints;
    // What the try that stands decided: the interval it covers, under which system key.
    let decided: { previousPosition: bigint; checkpoint: Omit<Checkpoint, 'mac'> } | null = null;
    const written = await decideAndAppend<LastCheckpoint | null, JournalEvent>(
      { store: this.#d.store, now: this.#d.now, view: null },
      {
        stream,
        context,
        // Another process checkpointed meanwhile: start from its checkpoint.
        load: async (afterConflict) => {
          if (afterConflict) this.#last = undefined;
          const last = await this.#lastCheckpoint();
          return { state: last, expected: expectedAfter(last?.revision ?? null) };
        },
        decide: async (loaded) => {
          decided = null;
          let last = loaded;
          const previousPosition = last?.coveredPosition ?? 0n;
          const interval = await readCheckpointHeads(this.#d.store, this.#d.names, previousPosition);
          if (interval === null) return [];
          if (interval.marked !== null && (last === null || interval.marked.checkpoint > last.revision)) {
            // Another process may have checkpointed since this one looked: look again before judging
            // (a newer checkpoint makes this append lose its race and decide again from it).
            this.#last = undefined;
            last = await this.#lastCheckpoint();
            if (last === null || interval.marked.checkpoint > last.revision) {
              throw missingCheckpoint(stream, interval.marked);
            }
          }
          await this.#checkPrevious(last);
          const stkIdentity = await this.#d.keys.current();
          const checkpoint = {
            previousPosition,
            coveredPosition: interval.covered,
            heads: interval.heads,
            stkIdentity,
          };
          decided = { previousPosition, checkpoint };
          return [{ type: CHECKPOINT_EVENT_TYPE, data: checkpointData(checkpoint, null) }];
        },
        // The MAC covers the event as stored, its link to the previous checkpoint included, so
        // the event is completed once the hash chain knows that link.
        append: async ([built], expected) => {
          if (built === undefined || decided === null || expected === 'any' || expected === 'stream_exists') {
            throw new TypeError('a checkpoint is one event appended at an exact revision');
          }
          const { checkpoint } = decided;
          return this.#d.store.appendBuilt(stream, expected, async (prevHash) => {
            const event = {
              ...built,
              metadata: { ...built.metadata, schemaVersion: CHAINED_SCHEMA_VERSION, prevHash },
            };
            const answer = await this.#d.keys.mac(
              checkpoint.stkIdentity,
              checkpointMacMessage({ streamName: stream, ...event }),
            );
            if (answer.kind !== 'mac') {
              throw new KeyledgerError(
                'ERR_SYSTEM_KEY_NOT_FOUND',
                `the current system key ${checkpoint.stkIdentity} cannot MAC a checkpoint`,
                { identity: checkpoint.stkIdentity },
              );
            }
            return { ...event, data: checkpointData(checkpoint, answer.mac.toString('hex')) };
          });
        },
      },
    );
    const result = written.appended;
    const stood = decided as { previousPosition: bigint; checkpoint: Omit<Checkpoint, 'mac'> } | null;
    if (result === null || stood === null) return null;
    const { checkpoint } = stood;
    this.#last = {
      revision: result.nextExpectedRevision,
      coveredPosition: checkpoint.coveredPosition,
      event: null,
    };
    this.#mark = this.#last;
    await this.#saveHint(result, checkpoint.coveredPosition);
    return {
      position: result.position,
      revision: result.nextExpectedRevision,
      previousPosition: checkpoint.previousPosition,
      coveredPosition: checkpoint.coveredPosition,
      streams: checkpoint.heads.length,
      stkIdentity: checkpoint.stkIdentity,
    };
  }

  /**
   * The newest checkpoint in the store (this process's memory of it, looked up once). The
   * checkpoint stream grows with the ledger, so the lookup starts from a hint kept as a snapshot
   * (the revision of the newest checkpoint when one was last written) and reads only what follows;
   * a missing or wrong hint costs one full read, never a wrong answer.
   */
  async #lastCheckpoint(): Promise<LastCheckpoint | null> {
    if (this.#last !== undefined) return this.#last;
    const hint = await this.#hint();
    let events = await this.#d.store.readStream(this.#d.names.checkpoints, { fromRevision: hint ?? 0n });
    if (events.length === 0 && hint !== null)
      events = await this.#d.store.readStream(this.#d.names.checkpoints);
    const newest = events.at(-1);
    if (newest === undefined) {
      this.#last = null;
      return null;
    }
    const parsed = parseCheckpoint(newest.data);
    if ('invalid' in parsed) {
      throw new KeyledgerError(
        'ERR_EVENT_SCHEMA',
        `the newest checkpoint (${this.#d.names.checkpoints}@${newest.revision}) fails its schema: run keyledger verify`,
        { stream: this.#d.names.checkpoints, revision: newest.revision.toString() },
      );
    }
    this.#last = { revision: newest.revision, coveredPosition: parsed.coveredPosition, event: newest };
    return this.#last;
  }

  /**
   * The checkpoint a new one continues from must be genuine: its MAC is checked once per process
   * (a retired key's cannot be, and is vouched for by the chain of the checkpoint stream). A forged
   * one is ERR_LEDGER_TAMPERED and nothing is written: a new checkpoint would vouch for it.
   */
  async #checkPrevious(last: LastCheckpoint | null): Promise<void> {
    const event = last?.event ?? null;
    if (last === null || event === null || this.#checkedRevision === last.revision) return;
    const parsed = parseCheckpoint(event.data);
    if (!('invalid' in parsed)) {
      const answer = await this.#d.keys.mac(parsed.stkIdentity, checkpointMacMessage(event));
      const stored = Buffer.from(parsed.mac, 'hex');
      if (
        answer.kind === 'unavailable' ||
        (answer.kind === 'mac' && stored.length === answer.mac.length && timingSafeEqual(stored, answer.mac))
      ) {
        this.#checkedRevision = last.revision;
        return;
      }
    }
    throw new KeyledgerError(
      'ERR_LEDGER_TAMPERED',
      `the newest checkpoint (${event.streamName}@${event.revision}) does not verify; no checkpoint was written: run keyledger verify`,
      { stream: event.streamName, revision: event.revision.toString(), position: event.position.toString() },
    );
  }

  /**
   * What an append needs of the newest checkpoint (its revision, for the mark) and an automatic
   * checkpoint's due check (what it covers), without reading the checkpoint itself: a checkpoint
   * lists up to MAX_CHECKPOINT_HEADS stream heads (700 kB), and every command that writes asked.
   * The hint names both; one read of the checkpoint stream after it proves no newer checkpoint
   * exists. A hint without `covered` (written before it had one), or one a newer checkpoint
   * follows, falls back to reading the newest checkpoint. A hint naming a checkpoint the stream
   * does not hold (edited, or the stream cut) makes the events written now name it: verify reports
   * them (checkpoint-stream-missing), as it reports the events written before the cut.
   * Checkpoints themselves never start from the hint: #lastCheckpoint reads and checks the event.
   */
  async #newestMark(): Promise<Pick<LastCheckpoint, 'revision' | 'coveredPosition'> | null> {
    if (this.#last !== undefined) return this.#last;
    if (this.#mark !== undefined) return this.#mark;
    const hint = await this.#hintState();
    if (hint?.coveredPosition !== undefined) {
      const newer = await this.#d.store.readStream(this.#d.names.checkpoints, {
        fromRevision: hint.revision + 1n,
      });
      if (newer.length === 0) {
        this.#mark = { revision: hint.revision, coveredPosition: hint.coveredPosition };
        return this.#mark;
      }
    }
    return this.#lastCheckpoint();
  }

  async #hint(): Promise<bigint | null> {
    return (await this.#hintState())?.revision ?? null;
  }

  async #hintState(): Promise<{ revision: bigint; coveredPosition?: bigint } | null> {
    const snapshot = await this.#d.store.loadSnapshot(this.#d.names.checkpointHint);
    const { revision, covered } = (snapshot?.state ?? {}) as { revision?: unknown; covered?: unknown };
    const decimal = (v: unknown): v is string => typeof v === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(v);
    if (!decimal(revision)) return null;
    return decimal(covered)
      ? { revision: BigInt(revision), coveredPosition: BigInt(covered) }
      : { revision: BigInt(revision) };
  }

  async #saveHint(result: AppendResult, covered: bigint): Promise<void> {
    try {
      await this.#d.store.saveSnapshot(this.#d.names.checkpointHint, {
        position: result.position,
        state: { revision: result.nextExpectedRevision.toString(), covered: covered.toString() },
      });
    } catch {
      // Only a hint: without it the next process reads the checkpoint stream once.
    }
  }
}
