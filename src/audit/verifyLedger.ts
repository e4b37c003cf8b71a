import { timingSafeEqual } from 'node:crypto';
import type { StreamNames } from '../journal/streamNames.js';
import type { RecordedEvent } from '../store/eventStore.js';
import { readNewestAnchor } from './anchorFile.js';
import { DEFAULT_CHECKPOINT_EVERY } from './checkpointer.js';
import {
  CHECKPOINT_EVENT_TYPE,
  type Checkpoint,
  type CheckpointHead,
  checkpointMacMessage,
  parseCheckpoint,
} from './checkpointFormat.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { DestructionReceipts } from './destructionReceipts.js';
import { type ChainLink, chainLinkOf, eventHash } from './hashChain.js';
import { isTamperRejection } from './snapshotSeal.js';
import type { SnapshotsVerified } from './verifySnapshots.js';

/**
 * verify: one pass over the ledger in position order, checking every stream's hash chain and, for
 * every checkpoint, that the streams stood where it says (docs/audit.md, "Tamper evidence").
 */

/** One kind per cause, so that callers (and tests) tell them apart without reading messages. */
export const PROBLEM_KINDS = [
  // The hash chain and the checkpoints' records of stream heads.
  'modified',
  'inserted',
  'deleted',
  'reordered',
  'truncated',
  'unchained',
  // A checkpoint that cannot be trusted, by cause.
  /** An event of another type in the checkpoint stream. */
  'checkpoint-foreign-event',
  /** A checkpoint whose data fails its schema. */
  'checkpoint-unparsable',
  /** It does not start where the checkpoint before it ended. */
  'checkpoint-discontinuous',
  /** Its covered interval is empty, or reaches its own position. */
  'checkpoint-range-invalid',
  /** A head for a stream it cannot cover, unsorted heads, or a head outside its interval. */
  'checkpoint-heads-invalid',
  /** Its MAC names a system key the ledger never recorded. */
  'checkpoint-unknown-system-key',
  /** Its MAC does not verify. */
  'checkpoint-mac-invalid',
  /** Its MAC's system key is gone and no later verified checkpoint vouches for it. */
  'checkpoint-unvouched',
  /** Events name checkpoints (metadata `checkpoint`) the checkpoint stream no longer holds. */
  'checkpoint-stream-missing',
  /** More ledger events after the newest checkpoint than the checkpoint interval allows. */
  'uncovered-tail-too-long',
  /** A stored snapshot (keymeta, as-of) that is not bound to this log, or whose MAC fails. */
  'snapshot-beyond-head',
  'snapshot-event-mismatch',
  'snapshot-unknown-system-key',
  'snapshot-mac-invalid',
  /** A missing material stream whose destruction receipt does not excuse it. */
  'receipt-mismatch',
  /** The store is older than the anchor (file or --anchor): its checkpoint is gone. */
  'rollback',
  /** The anchored checkpoint is there, with another hash. */
  'anchor-mismatch',
] as const;

export type ProblemKind = (typeof PROBLEM_KINDS)[number];

export interface VerifyProblem {
  readonly kind: ProblemKind;
  /** Where verify found it: the event concerned, or for a cut tail the position its checkpoint recorded. */
  readonly position: bigint;
  readonly stream: string;
  readonly revision: bigint | null;
  readonly message: string;
}

export interface VerifiedCheckpoint {
  readonly position: bigint;
  readonly revision: bigint;
  /** The checkpoint event's hash: keep it elsewhere and pass it back as an anchor. */
  readonly hash: string;
  readonly coveredPosition: bigint;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly prefix: string;
  /** The last position verify read (the store's head when it started). */
  readonly headPosition: bigint;
  readonly eventsChecked: number;
  readonly streams: number;
  /** Checkpoints whose commitments were compared with the ledger. */
  readonly checkpointsChecked: number;
  /** 'skipped': no system key was at hand, so checkpoints were taken as written (a writer could forge them). */
  readonly macs: 'checked' | 'skipped';
  readonly macsVerified: number;
  /** MACs under a system key no longer available (retired); the newest checkpoint vouches for them. */
  readonly macsUnavailable: number;
  /** Events written before the hash chain existed (metadata schemaVersion 1): covered by checkpoints only. */
  readonly legacyEvents: number;
  /** Material streams missing (wholly or in part) because a ManagedKeyDestroyed receipt deleted them. */
  readonly destroyedStreams: number;
  /** The newest checkpoint that verified. */
  readonly lastCheckpoint: VerifiedCheckpoint | null;
  /** Every event up to here is committed to by a MACed checkpoint (null: none is). */
  readonly coveredPosition: bigint | null;
  /**
   * Events after the newest checkpoint: chained, but a writer who can compute SHA-256 could have
   * changed, added or cut them undetected. A checkpoint covers them.
   */
  readonly uncoveredEvents: number;
  /** Stored snapshots checked (keymeta, as-of); 0 for an export file, which holds none. */
  readonly snapshotsChecked: number;
  /**
   * Snapshots no ledger will use that are not evidence of tampering: without a seal (written
   * before snapshots were sealed) or sealed under a retired system key. Replaced as the ledger runs.
   */
  readonly snapshotsUnused: number;
  readonly firstProblem: VerifyProblem | null;
  /** The first MAX_REPORTED problems by position. */
  readonly problems: readonly VerifyProblem[];
  readonly problemCount: number;
}

export const MAX_REPORTED = 100;

/** What verify reads: a store or an export file. */
export interface VerifySource {
  readonly prefix: string;
  /** Every event of the ledger, in position order, up to `headPosition`. */
  events(): AsyncIterable<RecordedEvent>;
  /** The checkpoint stream's events in position order (read alongside `events`). */
  checkpoints(): AsyncIterable<RecordedEvent>;
  readonly headPosition: bigint;
  /** Anything wrong with the source itself, known once it has been read (a cut export file). */
  finish?(): VerifyProblem | null;
}

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

interface Link {
  readonly revision: bigint;
  readonly position: bigint;
  readonly hash: string;
}

interface Track {
  last: Link;
  beforeLast: Link | null;
  /** A problem is recorded for this stream: what follows it is not judged again. */
  broken: boolean;
  /** `b` does not link to `a`: the next event (or a checkpoint) tells which of them is wrong. */
  suspect: { readonly a: Link; readonly b: Link; readonly bLink: string | null } | null;
  /** Revisions `from`..`to` are missing before the event at `position` (unless they turn up later). */
  gap: {
    readonly from: bigint;
    readonly to: bigint;
    readonly position: bigint;
    readonly revision: bigint;
  } | null;
}

interface Interval {
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

/** Problems that vanish if the stream turns out to be a destroyed key's material. */
interface Conditional {
  readonly problem: VerifyProblem;
  readonly keyId: string;
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
  readonly #problems: VerifyProblem[] = [];
  readonly #conditional: Conditional[] = [];
  readonly #tracks = new Map<string, Track>();
  readonly #receipts: DestructionReceipts;
  /** Checkpoints trusted only because a later one may vouch for them (MAC key unavailable). */
  readonly #provisional: { position: bigint; revision: bigint }[] = [];
  #lastMacVerifiedRevision: bigint | null = null;
  #chainSeen = false;
  #lastPosition = 0n;
  #eventsChecked = 0;
  #legacyEvents = 0;
  #sinceCovered = 0;
  #checkpointsChecked = 0;
  #macsVerified = 0;
  #macsUnavailable = 0;
  #coveredPosition: bigint | null = null;
  #lastCheckpoint: VerifiedCheckpoint | null = null;
  /** Checkpoints recorded elsewhere that the ledger must hold (--anchor, the anchor file). */
  readonly #anchors: { revision: bigint; hash: string; from: string; seen: boolean }[] = [];
  readonly #maxUncovered: number;
  #snapshotsChecked = 0;
  /** Revisions of the checkpoint stream seen so far in the walk. */
  readonly #checkpointRevisions = new Set<bigint>();
  readonly #missingCheckpoints = new Set<bigint>();
  /** The first event beyond the allowed uncovered tail since the last covered position. */
  #beyondTail: { position: bigint; stream: string; revision: bigint } | null = null;
  #snapshotsUnused = 0;
  /** Where the next checkpoint must start: the last one's covered position (null: unknown). */
  #expectedPrevious: bigint | null = 0n;

  constructor(source: VerifySource, options: VerifyOptions) {
    this.#source = source;
    this.#o = options;
    this.#receipts = new DestructionReceipts(options.names);
    const every = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.#maxUncovered = every === 0 ? Number.POSITIVE_INFINITY : 2 * every;
  }

  async run(): Promise<VerifyReport> {
    const { anchor, anchorFile } = this.#o;
    if (anchor !== undefined) this.#anchors.push({ ...anchor, from: '--anchor', seen: false });
    if (anchorFile !== undefined) {
      const newest = await readNewestAnchor(anchorFile, this.#source.prefix);
      if (newest !== null)
        this.#anchors.push({ ...newest, from: `the anchor file ${anchorFile}`, seen: false });
    }
    const cursor = this.#intervals()[Symbol.asyncIterator]();
    const next = async (): Promise<Interval | null> => {
      const r = await cursor.next();
      return r.done === true ? null : r.value;
    };
    try {
      let interval = await next();
      for await (const event of this.#source.events()) {
        while (interval !== null && interval.covered < event.position) {
          this.#close(interval);
          interval = await next();
        }
        const within = interval !== null && event.position > interval.previous ? interval : null;
        this.#event(event, within);
      }
      while (interval !== null) {
        this.#close(interval);
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
      this.#problem(
        kind,
        { position: r.position, stream: r.snapshot, revision: null },
        `snapshot ${r.snapshot}: ${r.message}`,
      );
    }
  }

  #problem(
    kind: ProblemKind,
    event: { position: bigint; stream: string; revision: bigint | null },
    message: string,
  ) {
    this.#problems.push({
      kind,
      position: event.position,
      stream: event.stream,
      revision: event.revision,
      message,
    });
  }

  /** The checkpoints, validated and MAC-checked, in order; a bad one is reported and not trusted. */
  async *#intervals(): AsyncGenerator<Interval> {
    for await (const event of this.#source.checkpoints()) {
      if (event.streamName !== this.#o.names.checkpoints) continue;
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
        this.#problem('checkpoint-foreign-event', at, `a ${event.type} event in the checkpoint stream`);
        continue;
      }
      const checkpoint = parseCheckpoint(event.data);
      if ('invalid' in checkpoint) {
        this.#problem('checkpoint-unparsable', at, `the checkpoint does not parse: ${checkpoint.invalid}`);
        this.#expectedPrevious = null;
        continue;
      }
      const expected = this.#expectedPrevious;
      this.#expectedPrevious = checkpoint.coveredPosition;
      if (expected !== null && checkpoint.previousPosition !== expected) {
        // Its own commitments still hold if its MAC does: a missing checkpoint is reported here and
        // by the checkpoint stream's chain.
        this.#problem(
          'checkpoint-discontinuous',
          at,
          `it starts at position ${checkpoint.previousPosition}, but the checkpoint before it covered up to ${expected}`,
        );
      }
      const shapeProblem = this.#shapeProblem(checkpoint, event.position);
      if (shapeProblem !== null) {
        this.#problem(shapeProblem.kind, at, shapeProblem.message);
        yield untrusted(checkpoint.previousPosition, checkpoint.coveredPosition);
        continue;
      }
      const mac = await this.#checkMac(event, checkpoint);
      if (mac !== 'ok' && mac !== 'provisional') {
        this.#problem(mac.kind, at, mac.message);
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
      if (!head.stream.startsWith(this.#source.prefix) || head.stream === this.#o.names.checkpoints) {
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
    const keys = this.#o.keys;
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

  #event(e: RecordedEvent, interval: Interval | null): void {
    this.#eventsChecked++;
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    // A checkpoint carries its own MAC: it is not part of the tail that waits for one.
    if (e.streamName !== this.#o.names.checkpoints && ++this.#sinceCovered > this.#maxUncovered)
      this.#beyondTail ??= at;
    if (e.position <= this.#lastPosition) {
      this.#problem('reordered', at, `position ${e.position} comes after position ${this.#lastPosition}`);
    }
    this.#lastPosition = e.position;
    const hash = eventHash(e);
    this.#noteEvent(e, hash, at);
    this.#chain(e, hash);
    if (interval?.trusted === true && e.streamName !== this.#o.names.checkpoints) {
      this.#againstCheckpoint(e, hash, interval);
    }
  }

  #noteEvent(
    e: RecordedEvent,
    hash: string,
    at: { position: bigint; stream: string; revision: bigint },
  ): void {
    const misplaced = this.#receipts.note(e);
    if (misplaced !== null) this.#problem('receipt-mismatch', at, misplaced);
    if (e.type === CHECKPOINT_EVENT_TYPE && e.streamName !== this.#o.names.checkpoints) {
      this.#problem('inserted', at, 'a checkpoint outside the checkpoint stream');
    }
    if (e.streamName !== this.#o.names.checkpoints) return;
    for (const anchor of this.#anchors) {
      if (e.revision !== anchor.revision) continue;
      anchor.seen = true;
      if (hash !== anchor.hash) {
        this.#problem(
          'anchor-mismatch',
          at,
          `the checkpoint ${anchor.from} anchors has hash ${anchor.hash}; this one has ${hash}`,
        );
      }
    }
  }

  /** The stream's hash chain: order of revisions, and each event's link to the one before. */
  #chain(e: RecordedEvent, hash: string): void {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    const current: Link = { revision: e.revision, position: e.position, hash };
    const link = chainLinkOf(e.metadata);
    if (link.kind === 'malformed') {
      this.#problem('modified', at, 'its metadata holds no valid hash-chain link (schemaVersion/prevHash)');
    } else if (link.kind === 'legacy') {
      if (this.#chainSeen) {
        this.#problem(
          'unchained',
          at,
          'an event without a hash-chain link, written after the ledger began chaining',
        );
      } else {
        this.#legacyEvents++;
      }
    } else {
      this.#chainSeen = true;
      if (link.checkpoint !== undefined) this.#checkMark(at, link.checkpoint);
    }
    if (e.streamName === this.#o.names.checkpoints) this.#checkpointRevisions.add(e.revision);
    const track = this.#tracks.get(e.streamName);
    if (track === undefined) {
      const gap =
        e.revision > 0n
          ? { from: 0n, to: e.revision - 1n, position: e.position, revision: e.revision }
          : null;
      if (gap === null && link.kind === 'chained' && link.prevHash !== null) {
        this.#problem('modified', at, "the stream's first event links to an event before it");
      }
      this.#tracks.set(e.streamName, { last: current, beforeLast: null, broken: false, suspect: null, gap });
      return;
    }
    this.#judge(track, e, current, link);
    track.beforeLast = track.last;
    track.last = current;
  }

  /**
   * The event names the newest checkpoint its writer knew: the checkpoint stream must hold it,
   * before the event. Reported once per checkpoint missing.
   */
  #checkMark(at: { position: bigint; stream: string; revision: bigint }, checkpoint: bigint): void {
    if (this.#checkpointRevisions.has(checkpoint) || this.#missingCheckpoints.has(checkpoint)) return;
    this.#missingCheckpoints.add(checkpoint);
    this.#problem(
      'checkpoint-stream-missing',
      at,
      this.#checkpointRevisions.size === 0
        ? `it was written after checkpoint ${this.#o.names.checkpoints}@${checkpoint}, but the ledger holds no checkpoint: the checkpoint stream was deleted`
        : `it was written after checkpoint ${this.#o.names.checkpoints}@${checkpoint}, which the checkpoint stream does not hold before it`,
    );
  }

  /** The event against its stream's tail: revision order, gaps, and its link. */
  #judge(track: Track, e: RecordedEvent, current: Link, link: ChainLink): void {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    if (track.broken) return;
    if (e.revision <= track.last.revision) {
      const gap = track.gap;
      if (gap !== null && e.revision >= gap.from && e.revision <= gap.to) {
        this.#problem(
          'reordered',
          { position: gap.position, stream: e.streamName, revision: gap.revision },
          `revision ${gap.revision} comes before revision ${e.revision} (at position ${e.position})`,
        );
      } else {
        this.#problem('reordered', at, `revision ${e.revision} comes after revision ${track.last.revision}`);
      }
      track.broken = true;
      return;
    }
    if (e.revision > track.last.revision + 1n) {
      if (track.suspect !== null) {
        // The break before the gap can no longer be told apart: name its earlier side.
        this.#modifiedBefore(track.suspect.a, track.suspect.b, e.streamName);
        track.broken = true;
        return;
      }
      // Linked to something missing: judged at the end (deleted, or reordered if it turns up).
      track.gap ??= {
        from: track.last.revision + 1n,
        to: e.revision - 1n,
        position: e.position,
        revision: e.revision,
      };
      return;
    }
    if (link.kind === 'chained') this.#link(track, current, link.prevHash, at);
  }

  #link(
    track: Track,
    current: Link,
    prevHash: string | null,
    at: { position: bigint; stream: string; revision: bigint },
  ): void {
    const suspect = track.suspect;
    if (prevHash === track.last.hash) {
      if (suspect !== null) {
        // The event after the suspect links to it, so the suspect is intact: the one before it changed.
        this.#modifiedBefore(suspect.a, suspect.b, at.stream);
        track.broken = true;
      }
      return;
    }
    if (suspect !== null) {
      if (prevHash === suspect.a.hash && suspect.bLink === current.hash) {
        this.#problem(
          'reordered',
          { position: suspect.b.position, stream: at.stream, revision: suspect.b.revision },
          `revisions ${suspect.b.revision} and ${current.revision} were swapped: each links to the other's place`,
        );
      } else if (prevHash === suspect.a.hash) {
        this.#problem(
          'inserted',
          { position: suspect.b.position, stream: at.stream, revision: suspect.b.revision },
          `revision ${suspect.b.revision} was inserted: the event after it links to revision ${suspect.a.revision}`,
        );
      } else {
        this.#problem(
          'modified',
          { position: suspect.b.position, stream: at.stream, revision: suspect.b.revision },
          `revision ${suspect.b.revision} was changed: neither its link nor the next event's link holds`,
        );
      }
      track.broken = true;
      return;
    }
    if (track.beforeLast !== null && prevHash === track.beforeLast.hash) {
      this.#problem(
        'inserted',
        { position: track.last.position, stream: at.stream, revision: track.last.revision },
        `revision ${track.last.revision} was inserted: the event after it links to revision ${track.beforeLast.revision}`,
      );
      track.broken = true;
      return;
    }
    track.suspect = { a: track.last, b: current, bLink: prevHash };
  }

  #modifiedBefore(a: Link, b: Link, stream: string): void {
    this.#problem(
      'modified',
      { position: a.position, stream, revision: a.revision },
      `revision ${a.revision} was changed: revision ${b.revision} links to something else (or events between them were removed)`,
    );
  }

  /** An event inside a trusted checkpoint's interval must be at or below the head it recorded. */
  #againstCheckpoint(e: RecordedEvent, hash: string, interval: Interval): void {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    const head = interval.heads.get(e.streamName);
    if (head === undefined) {
      this.#problem(
        'inserted',
        at,
        `the checkpoint at position ${interval.position} records no event of this stream after position ${interval.previous}`,
      );
      return;
    }
    if (e.revision > head.revision) {
      this.#problem(
        'inserted',
        at,
        `the checkpoint at position ${interval.position} records this stream ending at revision ${head.revision}`,
      );
      return;
    }
    if (e.revision !== head.revision) return;
    head.reached = true;
    if (e.position !== head.position) {
      this.#problem(
        'reordered',
        at,
        `the checkpoint at position ${interval.position} records it at position ${head.position}`,
      );
    }
    const track = this.#tracks.get(e.streamName);
    const suspect = track?.suspect ?? null;
    if (hash !== head.hash) {
      this.#problem(
        'modified',
        at,
        `its hash differs from the one the checkpoint at position ${interval.position} recorded`,
      );
      if (track !== undefined) track.broken = true;
    } else if (track !== undefined && suspect !== null && suspect.b.position === e.position) {
      // The checkpoint vouches for the suspect, so the event before it is the changed one.
      this.#modifiedBefore(suspect.a, suspect.b, e.streamName);
      track.broken = true;
    }
  }

  /** Every stream the checkpoint recorded must have reached its head by the covered position. */
  #close(interval: Interval): void {
    if (!interval.trusted) return;
    for (const head of interval.heads.values()) {
      this.#receipts.knowHead(head.stream, head.revision);
      if (head.reached) continue;
      const track = this.#tracks.get(head.stream);
      const at = { position: head.position, stream: head.stream, revision: head.revision };
      if (track !== undefined && track.last.revision >= head.revision) {
        this.#problem(
          'reordered',
          at,
          `the checkpoint at position ${interval.position} records revision ${head.revision} at position ${head.position}; it is elsewhere`,
        );
        continue;
      }
      const first = track === undefined ? 0n : track.last.revision + 1n;
      const problem: VerifyProblem = {
        kind: 'truncated',
        position: head.position,
        stream: head.stream,
        revision: first,
        message:
          first === head.revision
            ? `revision ${head.revision} (position ${head.position}) is missing: the checkpoint at position ${interval.position} records it`
            : `revisions ${first}..${head.revision} are missing (the last at position ${head.position}): the checkpoint at position ${interval.position} records them`,
      };
      this.#conditionalOnDestruction(problem);
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

  #conditionalOnDestruction(problem: VerifyProblem): void {
    const keyId = this.#o.names.materialKeyOf(problem.stream);
    if (keyId !== null) {
      this.#conditional.push({ problem, keyId });
    } else {
      this.#problems.push(problem);
    }
  }

  #finish(): VerifyReport {
    for (const [stream, track] of this.#tracks) {
      if (track.gap !== null && !track.broken) {
        const { from, to, position, revision } = track.gap;
        this.#conditionalOnDestruction({
          kind: 'deleted',
          position,
          stream,
          revision: from,
          message:
            from === to
              ? `revision ${from} is missing: revision ${revision} follows revision ${from - 1n}`
              : `revisions ${from}..${to} are missing before revision ${revision}`,
        });
      }
      if (track.suspect !== null && !track.broken)
        this.#modifiedBefore(track.suspect.a, track.suspect.b, stream);
    }
    const destroyedStreams = new Set<string>();
    for (const { problem, keyId } of this.#conditional) {
      const judged = this.#receipts.judge(keyId, problem.stream, this.#coveredPosition);
      if (judged.kind === 'excused') destroyedStreams.add(problem.stream);
      else if (judged.kind === 'none') this.#problems.push(problem);
      else this.#problems.push({ ...problem, kind: 'receipt-mismatch', message: judged.message });
    }
    for (const p of this.#provisional) {
      if (this.#lastMacVerifiedRevision === null || p.revision > this.#lastMacVerifiedRevision) {
        this.#problem(
          'checkpoint-unvouched',
          { position: p.position, stream: this.#o.names.checkpoints, revision: p.revision },
          "its MAC's system key is not available, and no later checkpoint with a verified MAC vouches for it",
        );
      }
    }
    for (const anchor of this.#anchors) {
      if (anchor.seen) continue;
      this.#problem(
        'rollback',
        { position: this.#lastPosition, stream: this.#o.names.checkpoints, revision: anchor.revision },
        `the checkpoint ${anchor.from} anchors (revision ${anchor.revision}) is gone: the store is older than the anchor, or was cut behind it`,
      );
    }
    if (this.#beyondTail !== null) {
      this.#problem(
        'uncovered-tail-too-long',
        this.#beyondTail,
        `${this.#sinceCovered} events follow the newest checkpoint; with checkpoints every ${this.#o.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY} events at most ${this.#maxUncovered} may (checkpoints stopped, or were removed)`,
      );
    }
    const sourceProblem = this.#source.finish?.() ?? null;
    if (sourceProblem !== null) this.#problems.push(sourceProblem);
    // Stable: problems found at one position keep the order they were found in.
    const problems = [...this.#problems].sort((a, b) =>
      a.position < b.position ? -1 : a.position > b.position ? 1 : 0,
    );
    return {
      ok: problems.length === 0,
      prefix: this.#source.prefix,
      headPosition: this.#source.headPosition,
      eventsChecked: this.#eventsChecked,
      streams: this.#tracks.size,
      checkpointsChecked: this.#checkpointsChecked,
      macs: this.#o.keys === null ? 'skipped' : 'checked',
      macsVerified: this.#macsVerified,
      macsUnavailable: this.#macsUnavailable,
      legacyEvents: this.#legacyEvents,
      destroyedStreams: destroyedStreams.size,
      lastCheckpoint: this.#lastCheckpoint,
      coveredPosition: this.#coveredPosition,
      uncoveredEvents: this.#sinceCovered,
      snapshotsChecked: this.#snapshotsChecked,
      snapshotsUnused: this.#snapshotsUnused,
      firstProblem: problems[0] ?? null,
      problems: problems.slice(0, MAX_REPORTED),
      problemCount: problems.length,
    };
  }
}
