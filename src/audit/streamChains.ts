import type { RecordedEvent } from '../store/eventStore.js';
import { type ChainLink, chainLinkOf } from './hashChain.js';
import type { MaterialStreamChecks } from './materialStreamChecks.js';
import type { ProblemLog } from './problemLog.js';

/**
 * Verify's per-stream hash-chain checks: the order of each stream's revisions and each event's
 * link to the one before it. A break is judged by what follows it, so each stream keeps a tail.
 */

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

type At = { position: bigint; stream: string; revision: bigint };

export class StreamChains {
  readonly #problems: ProblemLog;
  readonly #material: MaterialStreamChecks;
  readonly #tracks = new Map<string, Track>();
  #chainSeen = false;
  #legacyEvents = 0;

  constructor(problems: ProblemLog, material: MaterialStreamChecks) {
    this.#problems = problems;
    this.#material = material;
  }

  /** Streams seen. */
  get streams(): number {
    return this.#tracks.size;
  }

  /** Events written before the hash chain existed. */
  get legacyEvents(): number {
    return this.#legacyEvents;
  }

  /** The event's link as its metadata holds it; a malformed one, or a legacy one after chaining began, is a problem. */
  linkOf(e: RecordedEvent): ChainLink {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    const link = chainLinkOf(e.metadata);
    if (link.kind === 'malformed') {
      this.#problems.add(
        'modified',
        at,
        'its metadata holds no valid hash-chain link (schemaVersion/prevHash)',
      );
    } else if (link.kind === 'legacy') {
      if (this.#chainSeen) {
        this.#problems.add(
          'unchained',
          at,
          'an event without a hash-chain link, written after the ledger began chaining',
        );
      } else {
        this.#legacyEvents++;
      }
    } else {
      this.#chainSeen = true;
    }
    return link;
  }

  /** The stream's hash chain: order of revisions, and the event's link to the one before. */
  follow(e: RecordedEvent, hash: string, link: ChainLink): void {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    const current: Link = { revision: e.revision, position: e.position, hash };
    const track = this.#tracks.get(e.streamName);
    if (track === undefined) {
      const gap =
        e.revision > 0n
          ? { from: 0n, to: e.revision - 1n, position: e.position, revision: e.revision }
          : null;
      if (gap === null && link.kind === 'chained' && link.prevHash !== null) {
        this.#problems.add('modified', at, "the stream's first event links to an event before it");
      }
      this.#tracks.set(e.streamName, { last: current, beforeLast: null, broken: false, suspect: null, gap });
      return;
    }
    this.#judge(track, e, current, link);
    track.beforeLast = track.last;
    track.last = current;
  }

  /** The highest revision of `stream` seen so far (null: none). */
  lastRevision(stream: string): bigint | null {
    return this.#tracks.get(stream)?.last.revision ?? null;
  }

  /** A problem is recorded for `stream` elsewhere (a checkpoint's head): judge it no further. */
  markBroken(stream: string): void {
    const track = this.#tracks.get(stream);
    if (track !== undefined) track.broken = true;
  }

  /**
   * A trusted checkpoint vouches for the event at `position`: if that event is the suspect, the
   * event before it is the changed one.
   */
  vouchFor(stream: string, position: bigint): void {
    const track = this.#tracks.get(stream);
    const suspect = track?.suspect ?? null;
    if (track !== undefined && suspect !== null && suspect.b.position === position) {
      this.#modifiedBefore(suspect.a, suspect.b, stream);
      track.broken = true;
    }
  }

  /** The walk is over: gaps that never filled are deletions, suspects never resolved are changes. */
  finish(): void {
    for (const [stream, track] of this.#tracks) {
      if (track.gap !== null && !track.broken) {
        const { from, to, position, revision } = track.gap;
        this.#material.unlessDestroyed({
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
  }

  /** The event against its stream's tail: revision order, gaps, and its link. */
  #judge(track: Track, e: RecordedEvent, current: Link, link: ChainLink): void {
    const at = { position: e.position, stream: e.streamName, revision: e.revision };
    if (track.broken) return;
    if (e.revision <= track.last.revision) {
      const gap = track.gap;
      if (gap !== null && e.revision >= gap.from && e.revision <= gap.to) {
        this.#problems.add(
          'reordered',
          { position: gap.position, stream: e.streamName, revision: gap.revision },
          `revision ${gap.revision} comes before revision ${e.revision} (at position ${e.position})`,
        );
      } else {
        this.#problems.add(
          'reordered',
          at,
          `revision ${e.revision} comes after revision ${track.last.revision}`,
        );
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

  #link(track: Track, current: Link, prevHash: string | null, at: At): void {
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
        this.#problems.add(
          'reordered',
          { position: suspect.b.position, stream: at.stream, revision: suspect.b.revision },
          `revisions ${suspect.b.revision} and ${current.revision} were swapped: each links to the other's place`,
        );
      } else if (prevHash === suspect.a.hash) {
        this.#problems.add(
          'inserted',
          { position: suspect.b.position, stream: at.stream, revision: suspect.b.revision },
          `revision ${suspect.b.revision} was inserted: the event after it links to revision ${suspect.a.revision}`,
        );
      } else {
        this.#problems.add(
          'modified',
          { position: suspect.b.position, stream: at.stream, revision: suspect.b.revision },
          `revision ${suspect.b.revision} was changed: neither its link nor the next event's link holds`,
        );
      }
      track.broken = true;
      return;
    }
    if (track.beforeLast !== null && prevHash === track.beforeLast.hash) {
      this.#problems.add(
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
    this.#problems.add(
      'modified',
      { position: a.position, stream, revision: a.revision },
      `revision ${a.revision} was changed: revision ${b.revision} links to something else (or events between them were removed)`,
    );
  }
}
