import { setTimeout as sleep } from 'node:timers/promises';
import { isKeyledgerError } from '../domain/errors.js';

/** How many times an operation decides again after losing a race before it reports the conflict. */
export const MAX_DECISIONS = 10;

/**
 * Runs `attempt` until it does not lose an optimistic-concurrency race, calling `refresh` before
 * each new try. Losers back off for a random, growing while (capped at 50 ms), so racers spread out
 * instead of colliding again in lock step.
 */
export async function retryOnConflict<T>(
  attempt: () => Promise<T>,
  refresh: () => Promise<void>,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isKeyledgerError(error, 'ERR_VERSION_CONFLICT') || n >= MAX_DECISIONS) throw error;
      await sleep(Math.random() * Math.min(50, 2 ** n));
      await refresh();
    }
  }
}
