import type { StreamNames } from '../journal/streamNames.js';
import type { RecordedEvent } from '../store/eventStore.js';
import { CheckpointAnchors } from './checkpointAnchors.js';
import { CheckpointCoverage } from './checkpointCoverage.js';
import { CHECKPOINT_EVENT_TYPE } from './checkpointFormat.js';
import { CheckpointIntervals, type Interval } from './checkpointIntervals.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { CheckpointMarks } from './checkpointMarks.js';
import { eventHash } from './hashChain.js';
import { MaterialStreamChecks } from './materialStreamChecks.js';
import { ProblemLog } from './problemLog.js';
import { isTamperRejection } from './snapshotSeal.js';
import { StreamChains } from './streamChains.js';
import type { ProblemKind } from './verifyProblem.js';
import { MAX_REPORTED, type VerifyReport } from './verifyReport.js';
import type { SnapshotsVerified } from './verifySnapshots.js';
import type { VerifySource } from './verifySource.js';

/**
 * verify: one pass over the ledger in position order, checking every stream's hash chain and, for
 * every checkpoint, that the streams stood where it says (docs/audit.md, "Tamper evidence"). The
 * checks live in their own files; this one walks the events and the checkpoints side by side and
 * hands each to them, in an order that keeps problems found at one position in a stable order.
 */

export interface VerifyOptions {
  /** null: MACs are not checked (report.macs 'skipped'). Closed when the walk ends. */
  readonly keys: CheckpointMacKeys | null;
  /** The ledger's checkpoint stream, and its material streams (missing once their key is destroyed). */
  readonly names: Pick<StreamNames, 'checkpoints' | 'material' | 'materialKeyOf' | 'scopeOf'>;
  /**
   * A checkpoint recorded elsewhere (a previous report's lastCheckpoint): the ledger must still hold
   * it, which catches a cut that took the newest checkpoints too.
   */
  readonly anchor?: { readonly revision: bigint; readonly hash: string };
  /**
   * The rollback anchor file (src/audit/anchorFile.ts): its newest checkpoint for this prefix must
   * be in the ledger, with that hash. A file not written yet anchors nothing.
   */
  readonly anchorFile?: string;
  /**
   * The ledger's checkpoint interval (LedgerOptions.checkpointEvery; default 1000, 0: automatic
   * checkpoints off, no limit). More than twice as many ledger events after the newest checkpoint
   * is `uncovered-tail-too-long`: an automatic checkpoint follows the append that crosses the
   * interval, so a genuine tail exceeds it only by what concurrent writers add meanwhile or while a
   * failing provider makes it retry; twice the interval means checkpoints stopped or were removed.
   */
  readonly checkpointEvery?: number;
  /** Checks the stored snapshots (a store has them, an export file not); run after the walk. */
  readonly snapshots?: () => Promise<SnapshotsVerified>;
}

export async function verifyLedger(source: VerifySource, options: VerifyOptions): Promise<VerifyReport> {
  try {
    return await new Verifier(source, options).run();
  } finally {
    options.keys?.close();
  }
}

class Verifier {
  readonly #source: VerifySource;
  readonly #o: VerifyOptions;
  readonly #problems = new ProblemLog();
  readonly #material: MaterialStreamChecks;
  readonly #chains: StreamChains;
  readonly #marks: CheckpointMarks;
  readonly #anchors: CheckpointAnchors;
  readonly #intervals: CheckpointIntervals;
  readonly #coverage: CheckpointCoverage;
  #lastPosition = 0n;
  #eventsChecked = 0;
  #snapshotsChecked = 0;
  #snapshotsUnused = 0;

  constructor(source: VerifySource, options: VerifyOptions) {
    this.#source = source;
    this.#o = options;
    const checkpoints = options.names.checkpoints;
    this.#material = new MaterialStreamChecks(this.#problems, options.names);
    this.#chains = new StreamChains(this.#problems, this.#material);
    this.#marks = new CheckpointMarks(this.#problems, checkpoints);
    this.#anchors = new CheckpointAnchors(this.#problems, checkpoints);
    this.#intervals = new CheckpointIntervals(this.#problems, options.keys, checkpoints, source.prefix);
    this.#coverage = new CheckpointCoverage(
      this.#problems,
      this.#chains,
      this.#material,
      checkpoints,
      options.checkpointEvery,
    );
  }

  async run(): Promise<VerifyReport> {
    await this.#anchors.load(this.#o.anchor, this.#o.anchorFile, this.#source.prefix);
    const cursor = this.#intervals.read(() => this.#source.checkpoints())[Symbol.asyncIterator]();
    const next = async (): Promise<Interval | null> => {
      const r = await cursor.next();
      return r.done === true ? null : r.value;
    };
    try {
      let interval = await next();
      for await (const event of this.#source.events()) {
        while (interval !== null && interval.covered < event.position) {
          this.#coverage.close(interval);
          interval = await next();
        }
        const within = interval !== null && event.position > interval.previous ? interval : null;
        this.#event(event, within);
      }
      while (interval !== null) {
        this.#coverage.close(interval);
        interval = await next();
      }
    } finally {
      await cursor.return?.(undefined);
    }
    await this.#checkSnapshots();
    return this.#finish();
  }

  async #checkSnapshots(): Promise<void> {
    if (this.#o.snapshots === undefined) return;
    const { checked, rejections } = await this.#o.snapshots();
    this.#snapshotsChecked = checked;
    for (const r of rejections) {
      if (!isTamperRejection(r.kind)) {
        this.#snapshotsUnused++;
        continue;
      }
      const kind: ProblemKind = r.kind as Exclude<
        typeof r.kind,
        'snapshot-unbound' | 'snapshot-unverifiable'
      >;
      this.#problems.add(
        kind,
        { position: r.position, stream: r.snapshot, revision: null },
        `snapshot ${r.snapshot}: ${r.message}`,
      );
    }
  }

  #event(e: RecordedEvent, interval: Interval | null): void {
    const checkpoints = this.#o.names.checkpoints;
    this.#eventsChecked++;
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    this.#coverage.count(e);
    if (e.position <= this.#lastPosition) {
      this.#problems.add(
        'reordered',
        at,
        `position ${e.position} comes after position ${this.#lastPosition}`,
      );
    }
    this.#lastPosition = e.position;
    const hash = eventHash(e);
    const misplaced = this.#material.note(e);
    if (misplaced !== null) this.#problems.add('receipt-mismatch', at, misplaced);
    if (e.type === CHECKPOINT_EVENT_TYPE && e.streamName !== checkpoints) {
      this.#problems.add('inserted', at, 'a checkpoint outside the checkpoint stream');
    }
    this.#anchors.note(e, hash, at);
    const link = this.#chains.linkOf(e);
    if (link.kind === 'chained' && link.checkpoint !== undefined) this.#marks.check(at, link.checkpoint);
    this.#marks.see(e);
    this.#chains.follow(e, hash, link);
    if (interval?.trusted === true && e.streamName !== checkpoints) this.#coverage.check(e, hash, interval);
  }

  #finish(): VerifyReport {
    this.#chains.finish();
    const destroyedStreams = this.#material.judge(this.#coverage.coveredPosition);
    this.#intervals.finish();
    this.#anchors.finish(this.#lastPosition);
    this.#coverage.finish();
    const sourceProblem = this.#source.finish?.() ?? null;
    if (sourceProblem !== null) this.#problems.push(sourceProblem);
    const problems = this.#problems.byPosition();
    return {
      ok: problems.length === 0,
      prefix: this.#source.prefix,
      headPosition: this.#source.headPosition,
      eventsChecked: this.#eventsChecked,
      streams: this.#chains.streams,
      checkpointsChecked: this.#coverage.checkpointsChecked,
      macs: this.#o.keys === null ? 'skipped' : 'checked',
      macsVerified: this.#intervals.macsVerified,
      macsUnavailable: this.#intervals.macsUnavailable,
      legacyEvents: this.#chains.legacyEvents,
      destroyedStreams,
      lastCheckpoint: this.#coverage.lastCheckpoint,
      coveredPosition: this.#coverage.coveredPosition,
      uncoveredEvents: this.#coverage.uncoveredEvents,
      snapshotsChecked: this.#snapshotsChecked,
      snapshotsUnused: this.#snapshotsUnused,
      firstProblem: problems[0] ?? null,
      problems: problems.slice(0, MAX_REPORTED),
      problemCount: problems.length,
    };
  }
}
