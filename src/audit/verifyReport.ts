import type { VerifyProblem } from './verifyProblem.js';

/** What verify answers (docs/audit.md, "Tamper evidence"). */

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
