/** What verify reports as wrong with a ledger: one kind per cause, and where it was found. */

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
  /** A row snapshot whose rows are not the ones its sealed header counts (edited, dropped, added, stale). */
  'snapshot-rows-mismatch',
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

/** Where a problem was found: an event, or a snapshot (revision null). */
export type ProblemSite = Pick<VerifyProblem, 'position' | 'stream' | 'revision'>;
