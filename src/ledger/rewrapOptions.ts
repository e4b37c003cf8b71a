import { KeyledgerError } from '../domain/errors.js';
import type { OperationOptions } from './operationOptions.js';
import type { RewrapCampaignInfo } from './rewrapCampaignInfo.js';

/**
 * How a caller runs a rewrap campaign (RewrapCampaigns.start and resume): batch size, when to
 * stop, progress callbacks, and their checks. Apart from rewrapCampaign.ts, which runs campaigns,
 * so that the operation table (src/operations/rewrapOperations.ts) and library callers find the
 * options and their limits in one short file.
 */

/** Keys per batch (one checkpoint event each) unless the caller says otherwise. */
export const DEFAULT_REWRAP_BATCH_SIZE = 100;
export const MAX_REWRAP_BATCH_SIZE = 10_000;

export interface RewrapOptions extends OperationOptions {
  /** Keys per batch; a checkpoint is recorded after each (default 100, at most 10 000). */
  readonly batchSize?: number;
  /** Stop after this many batches, leaving the campaign to be resumed (status `paused`). */
  readonly maxBatches?: number;
  /** Stops the campaign at the next batch boundary (status `paused`); it can be resumed. */
  readonly signal?: AbortSignal;
  /** Called after every recorded checkpoint. A throw stops the campaign (resumable). */
  readonly onProgress?: (progress: RewrapCampaignInfo) => void | Promise<void>;
}

/** The batch size the options ask for, checked with maxBatches (ERR_INVALID_ARGUMENT). */
export function checkBatchSize(options: RewrapOptions): number {
  const size = options.batchSize ?? DEFAULT_REWRAP_BATCH_SIZE;
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_REWRAP_BATCH_SIZE) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `the batch size must be 1 to ${MAX_REWRAP_BATCH_SIZE}`, {
      batchSize: String(size),
    });
  }
  const max = options.maxBatches;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 0)) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'maxBatches must be a non-negative integer', {
      maxBatches: String(max),
    });
  }
  return size;
}
