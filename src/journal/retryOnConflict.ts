import { isKeyledgerError } from '../domain/errors.js';
import type { RetryPolicy } from './retryPolicy.js';

/**
 * Runs `attempt` until it does not lose an optimistic-concurrency race, calling `refresh` before
 * each new try. Losers back off as `policy` says (jittered, scaled to the store's latency: see
 * RetryPolicy), so racers spread out instead of colliding again in lock step; after
 * `policy.maxDecisions` tries the conflict is reported.
 */
export async function retryOnConflict<T>(
  attempt: () => Promise<T>,
  refresh: () => Promise<void>,
  policy: RetryPolicy,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await policy.timed(attempt);
    } catch (error) {
      if (!isKeyledgerError(error, 'ERR_VERSION_CONFLICT') || n >= policy.maxDecisions) throw error;
      await policy.backOff(n);
      await refresh();
    }
  }
}
