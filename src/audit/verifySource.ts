import type { RecordedEvent } from '../store/eventStore.js';
import type { VerifyProblem } from './verifyProblem.js';

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
