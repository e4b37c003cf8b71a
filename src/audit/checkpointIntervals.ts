import { timingSafeEqual } from 'node:crypto';
import type { RecordedEvent } from '../store/eventStore.js';
import {
  CHECKPOINT_EVENT_TYPE,
  type Checkpoint,
  type CheckpointHead,
  checkpointMacMessage,
  parseCheckpoint,
} from './checkpointFormat.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { eventHash } from './hashChain.js';
import type { ProblemLog } from './problemLog.js';
import type { ProblemKind } from './verifyProblem.js';

/** A checkpoint as verify walks it: the interval of positions it covers and the heads it recorded. */
export interface Interval {
  readonly position: bigint;
  readonly revision: bigint;
  /** The checkpoint event's own hash. */
  readonly hash: string;
  readonly previous: bigint;
  readonly covered: bigint;
  /** Trusted: its MAC verified (or MACs are skipped, or it awaits a later checkpoint's vouching). */
  readonly trusted: boolean;
  readonly heads: Map<string, CheckpointHead & { reached: boolean }>;
}

/**
 * Verify's checks of the checkpoints themselves: type, schema, continuity, shape and MAC. A
 * checkpoint that fails one is reported and not trusted.
 */
export class CheckpointIntervals {
  readonly #problems: ProblemLog;
  /** null: MACs are not checked. */
  readonly #keys: CheckpointMacKeys | null;
  readonly #checkpoints: string;
  readonly #prefix: string;
  /** Checkpoints trusted only because a later one may vouch for them (MAC key unavailable). */
  readonly #provisional: { position: bigint; revision: bigint }[] = [];
  #lastMacVerifiedRevision: bigint | null = null;
  /** Where the next checkpoint must start: the last one's covered position (null: unknown). */
  #expectedPrevious: bigint | null = 0n;
  #macsVerified = 0;
  #macsUnavailable = 0;

  constructor(problems: ProblemLog, keys: CheckpointMacKeys | null, checkpoints: string, prefix: string) {
    this.#problems = problems;
    this.#keys = keys;
    this.#checkpoints = checkpoints;
    this.#prefix = prefix;
  }

  get macsVerified(): number {
    return this.#macsVerified;
  }

  get macsUnavailable(): number {
    return this.#macsUnavailable;
  }

  /**
   * The checkpoints, validated and MAC-checked, in order; a bad one is reported and not trusted.
   * `checkpoints` is called on the first `next()`, so the source is read only once the walk starts.
   */
  async *read(checkpoints: () => AsyncIterable<RecordedEvent>): AsyncGenerator<Interval> {
    for await (const event of checkpoints()) {
      if (event.streamName !== this.#checkpoints) continue;
      const at = { position: event.position, stream: event.streamName, revision: event.revision };
      const hash = eventHash(event);
      const untrusted = (previous: bigint, covered: bigint): Interval => ({
        position: event.position,
        revision: event.revision,
        hash,
        previous,
        covered,
        trusted: false,
        heads: new Map(),
      });
      if (event.type !== CHECKPOINT_EVENT_TYPE) {
        this.#problems.add('checkpoint-foreign-event', at, `a ${event.type} event in the checkpoint stream`);
        continue;
      }
      const checkpoint = parseCheckpoint(event.data);
      if ('invalid' in checkpoint) {
        this.#problems.add(
          'checkpoint-unparsable',
          at,
          `the checkpoint does not parse: ${checkpoint.invalid}`,
        );
        this.#expectedPrevious = null;
        continue;
      }
      const expected = this.#expectedPrevious;
      this.#expectedPrevious = checkpoint.coveredPosition;
      if (expected !== null && checkpoint.previousPosition !== expected) {
        // Its own commitments still hold if its MAC does: a missing checkpoint is reported here and
        // by the checkpoint stream's chain.
        this.#problems.add(
          'checkpoint-discontinuous',
          at,
          `it starts at position ${checkpoint.previousPosition}, but the checkpoint before it covered up to ${expected}`,
        );
      }
      const shapeProblem = this.#shapeProblem(checkpoint, event.position);
      if (shapeProblem !== null) {
        this.#problems.add(shapeProblem.kind, at, shapeProblem.message);
        yield untrusted(checkpoint.previousPosition, checkpoint.coveredPosition);
        continue;
      }
      const mac = await this.#checkMac(event, checkpoint);
      if (mac !== 'ok' && mac !== 'provisional') {
        this.#problems.add(mac.kind, at, mac.message);
        yield untrusted(checkpoint.previousPosition, checkpoint.coveredPosition);
        continue;
      }
      if (mac === 'provisional')
        this.#provisional.push({ position: event.position, revision: event.revision });
      yield {
        position: event.position,
        revision: event.revision,
        hash,
        previous: checkpoint.previousPosition,
        covered: checkpoint.coveredPosition,
        trusted: true,
        heads: new Map(checkpoint.heads.map((h) => [h.stream, { ...h, reached: false }])),
      };
    }
  }

  /** The walk is over: a provisional checkpoint no later verified MAC vouches for is a problem. */
  finish(): void {
    for (const p of this.#provisional) {
      if (this.#lastMacVerifiedRevision === null || p.revision > this.#lastMacVerifiedRevision) {
        this.#problems.add(
          'checkpoint-unvouched',
          { position: p.position, stream: this.#checkpoints, revision: p.revision },
          "its MAC's system key is not available, and no later checkpoint with a verified MAC vouches for it",
        );
      }
    }
  }

  #shapeProblem(c: Checkpoint, position: bigint): { kind: ProblemKind; message: string } | null {
    if (c.coveredPosition <= c.previousPosition || c.coveredPosition >= position) {
      return {
        kind: 'checkpoint-range-invalid',
        message: `its covered position ${c.coveredPosition} is not between ${c.previousPosition} and its own position`,
      };
    }
    const heads = (message: string) => ({ kind: 'checkpoint-heads-invalid' as const, message });
    let before: string | null = null;
    for (const head of c.heads) {
      if (!head.stream.startsWith(this.#prefix) || head.stream === this.#checkpoints) {
        return heads(`it records a head for stream ${head.stream}, which is not one it covers`);
      }
      if (before !== null && head.stream <= before)
        return heads('its heads are not sorted by stream, one per stream');
      if (head.position <= c.previousPosition || head.position > c.coveredPosition) {
        return heads(
          `it records ${head.stream} at position ${head.position}, outside the interval it covers`,
        );
      }
      before = head.stream;
    }
    return null;
  }

  async #checkMac(
    event: RecordedEvent,
    c: Checkpoint,
  ): Promise<'ok' | 'provisional' | { kind: ProblemKind; message: string }> {
    const keys = this.#keys;
    if (keys === null) return 'ok';
    const answer = await keys.mac(c.stkIdentity, checkpointMacMessage(event));
    switch (answer.kind) {
      case 'unknown':
        return {
          kind: 'checkpoint-unknown-system-key',
          message: `its MAC is under system key ${c.stkIdentity}, which the ledger never recorded`,
        };
      case 'unavailable':
        this.#macsUnavailable++;
        return 'provisional';
      case 'mac': {
        const stored = Buffer.from(c.mac, 'hex');
        if (stored.length !== answer.mac.length || !timingSafeEqual(stored, answer.mac)) {
          return {
            kind: 'checkpoint-mac-invalid',
            message: 'its MAC does not verify: it was changed, or made without the system key',
          };
        }
        this.#macsVerified++;
        this.#lastMacVerifiedRevision = event.revision;
        return 'ok';
      }
      default: {
        const unreachable: never = answer;
        return unreachable;
      }
    }
  }
}
