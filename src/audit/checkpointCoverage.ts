import type { RecordedEvent } from '../store/eventStore.js';
import { DEFAULT_CHECKPOINT_EVERY } from './checkpointer.js';
import type { Interval } from './checkpointIntervals.js';
import type { MaterialStreamChecks } from './materialStreamChecks.js';
import type { ProblemLog } from './problemLog.js';
import type { StreamChains } from './streamChains.js';
import type { VerifiedCheckpoint } from './verifyReport.js';

/**
 * Verify's checks of the ledger against its trusted checkpoints: every event inside a checkpoint's
 * interval is at or below the head it recorded, every recorded head is reached, and no more events
 * follow the newest checkpoint than the checkpoint interval allows.
 */
export class CheckpointCoverage {
  readonly #problems: ProblemLog;
  readonly #chains: StreamChains;
  readonly #material: MaterialStreamChecks;
  readonly #checkpoints: string;
  readonly #checkpointEvery: number;
  readonly #maxUncovered: number;
  #checkpointsChecked = 0;
  #coveredPosition: bigint | null = null;
  #lastCheckpoint: VerifiedCheckpoint | null = null;
  #sinceCovered = 0;
  /** The first event beyond the allowed uncovered tail since the last covered position. */
  #beyondTail: { position: bigint; stream: string; revision: bigint } | null = null;

  /** `checkpointEvery`: VerifyOptions.checkpointEvery (0: no limit on the uncovered tail). */
  constructor(
    problems: ProblemLog,
    chains: StreamChains,
    material: MaterialStreamChecks,
    checkpoints: string,
    checkpointEvery: number | undefined,
  ) {
    this.#problems = problems;
    this.#chains = chains;
    this.#material = material;
    this.#checkpoints = checkpoints;
    this.#checkpointEvery = checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.#maxUncovered = this.#checkpointEvery === 0 ? Number.POSITIVE_INFINITY : 2 * this.#checkpointEvery;
  }

  get checkpointsChecked(): number {
    return this.#checkpointsChecked;
  }

  get coveredPosition(): bigint | null {
    return this.#coveredPosition;
  }

  get lastCheckpoint(): VerifiedCheckpoint | null {
    return this.#lastCheckpoint;
  }

  /** Events after the newest checkpoint. */
  get uncoveredEvents(): number {
    return this.#sinceCovered;
  }

  /** Counts an event of the walk into the tail that waits for a checkpoint. */
  count(e: RecordedEvent): void {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    // A checkpoint carries its own MAC: it is not part of the tail that waits for one.
    if (e.streamName !== this.#checkpoints && ++this.#sinceCovered > this.#maxUncovered)
      this.#beyondTail ??= at;
  }

  /** An event inside a trusted checkpoint's interval must be at or below the head it recorded. */
  check(e: RecordedEvent, hash: string, interval: Interval): void {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    const head = interval.heads.get(e.streamName);
    if (head === undefined) {
      this.#problems.add(
        'inserted',
        at,
        `the checkpoint at position ${interval.position} records no event of this stream after position ${interval.previous}`,
      );
      return;
    }
    if (e.revision > head.revision) {
      this.#problems.add(
        'inserted',
        at,
        `the checkpoint at position ${interval.position} records this stream ending at revision ${head.revision}`,
      );
      return;
    }
    if (e.revision !== head.revision) return;
    head.reached = true;
    if (e.position !== head.position) {
      this.#problems.add(
        'reordered',
        at,
        `the checkpoint at position ${interval.position} records it at position ${head.position}`,
      );
    }
    if (hash !== head.hash) {
      this.#problems.add(
        'modified',
        at,
        `its hash differs from the one the checkpoint at position ${interval.position} recorded`,
      );
      this.#chains.markBroken(e.streamName);
    } else {
      this.#chains.vouchFor(e.streamName, e.position);
    }
  }

  /** Every stream the checkpoint recorded must have reached its head by the covered position. */
  close(interval: Interval): void {
    if (!interval.trusted) return;
    for (const head of interval.heads.values()) {
      this.#material.knowHead(head.stream, head.revision);
      if (head.reached) continue;
      const last = this.#chains.lastRevision(head.stream);
      const at = { position: head.position, stream: head.stream, revision: head.revision };
      if (last !== null && last >= head.revision) {
        this.#problems.add(
          'reordered',
          at,
          `the checkpoint at position ${interval.position} records revision ${head.revision} at position ${head.position}; it is elsewhere`,
        );
        continue;
      }
      const first = last === null ? 0n : last + 1n;
      this.#material.unlessDestroyed({
        kind: 'truncated',
        position: head.position,
        stream: head.stream,
        revision: first,
        message:
          first === head.revision
            ? `revision ${head.revision} (position ${head.position}) is missing: the checkpoint at position ${interval.position} records it`
            : `revisions ${first}..${head.revision} are missing (the last at position ${head.position}): the checkpoint at position ${interval.position} records them`,
      });
    }
    this.#checkpointsChecked++;
    this.#coveredPosition = interval.covered;
    this.#sinceCovered = 0;
    this.#beyondTail = null;
    this.#lastCheckpoint = {
      position: interval.position,
      revision: interval.revision,
      hash: interval.hash,
      coveredPosition: interval.covered,
    };
  }

  /** The walk is over: a tail longer than the interval allows means checkpoints stopped. */
  finish(): void {
    if (this.#beyondTail === null) return;
    this.#problems.add(
      'uncovered-tail-too-long',
      this.#beyondTail,
      `${this.#sinceCovered} events follow the newest checkpoint; with checkpoints every ${this.#checkpointEvery} events at most ${this.#maxUncovered} may (checkpoints stopped, or were removed)`,
    );
  }
}
