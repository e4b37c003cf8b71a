import type { RecordedEvent } from '../store/eventStore.js';
import type { ProblemLog } from './problemLog.js';

/**
 * Events name the newest checkpoint their writer knew (metadata `checkpoint`): the checkpoint
 * stream must hold it before the event, so deleting checkpoints (or the whole stream) shows.
 */
export class CheckpointMarks {
  readonly #problems: ProblemLog;
  readonly #checkpoints: string;
  /** Revisions of the checkpoint stream seen so far in the walk. */
  readonly #seen = new Set<bigint>();
  readonly #missing = new Set<bigint>();

  constructor(problems: ProblemLog, checkpoints: string) {
    this.#problems = problems;
    this.#checkpoints = checkpoints;
  }

  /** The event at `at` names `checkpoint`. Reported once per checkpoint missing. */
  check(at: { position: bigint; stream: string; revision: bigint }, checkpoint: bigint): void {
    if (this.#seen.has(checkpoint) || this.#missing.has(checkpoint)) return;
    this.#missing.add(checkpoint);
    this.#problems.add(
      'checkpoint-stream-missing',
      at,
      this.#seen.size === 0
        ? `it was written after checkpoint ${this.#checkpoints}@${checkpoint}, but the ledger holds no checkpoint: the checkpoint stream was deleted`
        : `it was written after checkpoint ${this.#checkpoints}@${checkpoint}, which the checkpoint stream does not hold before it`,
    );
  }

  /** Notes an event of the walk: one of the checkpoint stream is there from now on. */
  see(e: RecordedEvent): void {
    if (e.streamName === this.#checkpoints) this.#seen.add(e.revision);
  }
}
