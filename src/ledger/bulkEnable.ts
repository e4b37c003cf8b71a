import type { OperationOptions } from './operationOptions.js';

/** Scopes enabled at once by default: enough appends per turn for the sqlite store's group commit. */
export const DEFAULT_BULK_CONCURRENCY = 64;

export interface BulkEnableOptions extends OperationOptions {
  /** How many enables run at once (default 64, 1 to 1024). */
  readonly concurrency?: number;
}

/**
 * Runs `enable` for every scope, `concurrency` at a time, and answers the results in the order of
 * `scopes`. Each enable is the single-scope one (its own decision on the scope's stream, its own
 * retries), so running many at once changes nothing but the speed: the sqlite store commits the
 * appends of one event-loop turn in one transaction (one fsync for many scopes). The first failure
 * is thrown once the enables in flight have settled; the scopes enabled before it stay enabled, and
 * running the same list again is safe (enabling an enabled scope writes nothing).
 */
export async function enableMany<S, R>(
  scopes: readonly S[],
  enable: (scope: S) => Promise<R>,
  concurrency: number = DEFAULT_BULK_CONCURRENCY,
): Promise<R[]> {
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 1 && concurrency <= 1024)) {
    throw new TypeError('concurrency must be a whole number from 1 to 1024');
  }
  const results: R[] = new Array(scopes.length);
  let next = 0;
  let failure: { readonly error: unknown } | null = null;
  const worker = async () => {
    while (failure === null && next < scopes.length) {
      const i = next++;
      try {
        results[i] = await enable(scopes[i] as S);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, scopes.length) }, worker));
  if (failure !== null) throw (failure as { readonly error: unknown }).error;
  return results;
}
