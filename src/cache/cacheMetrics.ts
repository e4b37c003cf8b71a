/** Counters of one cache layer. */
export interface LayerCounters {
  hits: number;
  misses: number;
  evictions: number;
  invalidations: number;
}

/**
 * What the resolver's caches did, per layer: L1 (this process's LRU caches), L2 (the keymeta
 * view), L3 (the provider). `appliedPosition` is the last ledger position this process applied.
 */
export interface CacheMetrics {
  readonly l1: Readonly<LayerCounters>;
  readonly l1Keys: { readonly size: number; readonly max: number };
  readonly l1Resolutions: { readonly size: number; readonly max: number };
  readonly l2: Readonly<LayerCounters>;
  readonly l3: Readonly<LayerCounters & { failures: number }>;
  readonly negativeEntries: number;
  readonly appliedPosition: bigint;
}

export function newCounters(): LayerCounters {
  return { hits: 0, misses: 0, evictions: 0, invalidations: 0 };
}
