import type { RecordedEvent } from '../store/eventStore.js';
import { readNewestAnchor } from './anchorFile.js';
import type { ProblemLog } from './problemLog.js';

/**
 * Checkpoints recorded elsewhere (--anchor, the rollback anchor file) that the ledger must still
 * hold, with the same hash: a store cut behind them, or restored from an older copy, shows.
 */
export class CheckpointAnchors {
  readonly #problems: ProblemLog;
  readonly #checkpoints: string;
  readonly #anchors: { revision: bigint; hash: string; from: string; seen: boolean }[] = [];

  constructor(problems: ProblemLog, checkpoints: string) {
    this.#problems = problems;
    this.#checkpoints = checkpoints;
  }

  /** `anchor`: a previous report's lastCheckpoint; `anchorFile`: its newest for `prefix`, if written yet. */
  async load(
    anchor: { readonly revision: bigint; readonly hash: string } | undefined,
    anchorFile: string | undefined,
    prefix: string,
  ): Promise<void> {
    if (anchor !== undefined) this.#anchors.push({ ...anchor, from: '--anchor', seen: false });
    if (anchorFile !== undefined) {
      const newest = await readNewestAnchor(anchorFile, prefix);
      if (newest !== null)
        this.#anchors.push({ ...newest, from: `the anchor file ${anchorFile}`, seen: false });
    }
  }

  /** Compares an event of the checkpoint stream with the anchors at its revision. */
  note(e: RecordedEvent, hash: string, at: { position: bigint; stream: string; revision: bigint }): void {
    if (e.streamName !== this.#checkpoints) return;
    for (const anchor of this.#anchors) {
      if (e.revision !== anchor.revision) continue;
      anchor.seen = true;
      if (hash !== anchor.hash) {
        this.#problems.add(
          'anchor-mismatch',
          at,
          `the checkpoint ${anchor.from} anchors has hash ${anchor.hash}; this one has ${hash}`,
        );
      }
    }
  }

  /** The walk ended at `lastPosition`: an anchor never seen is a rollback. */
  finish(lastPosition: bigint): void {
    for (const anchor of this.#anchors) {
      if (anchor.seen) continue;
      this.#problems.add(
        'rollback',
        { position: lastPosition, stream: this.#checkpoints, revision: anchor.revision },
        `the checkpoint ${anchor.from} anchors (revision ${anchor.revision}) is gone: the store is older than the anchor, or was cut behind it`,
      );
    }
  }
}
