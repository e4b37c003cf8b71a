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

/** The metrics in Prometheus' text exposition format (version 0.0.4). */
export function toPrometheus(metrics: CacheMetrics, prefix = 'keyledger'): string {
  const lines: string[] = [];
  const counter = (name: string, help: string, samples: readonly [string, number][]) => {
    lines.push(`# HELP ${prefix}_${name} ${help}`, `# TYPE ${prefix}_${name} counter`);
    for (const [layer, value] of samples) lines.push(`${prefix}_${name}{layer="${layer}"} ${value}`);
  };
  const gauge = (name: string, help: string, value: number | bigint, labels = '') => {
    lines.push(
      `# HELP ${prefix}_${name} ${help}`,
      `# TYPE ${prefix}_${name} gauge`,
      `${prefix}_${name}${labels} ${value}`,
    );
  };
  const layers = [
    ['l1', metrics.l1],
    ['l2', metrics.l2],
    ['l3', metrics.l3],
  ] as const;
  counter(
    'cache_hits_total',
    'Key lookups answered by the layer.',
    layers.map(([l, c]) => [l, c.hits]),
  );
  counter(
    'cache_misses_total',
    'Key lookups the layer could not answer.',
    layers.map(([l, c]) => [l, c.misses]),
  );
  counter(
    'cache_evictions_total',
    'Entries dropped to stay within bounds or on expiry.',
    layers.map(([l, c]) => [l, c.evictions]),
  );
  counter(
    'cache_invalidations_total',
    'Entries evicted or replaced because a ledger event changed them.',
    layers.map(([l, c]) => [l, c.invalidations]),
  );
  counter('provider_failures_total', 'Dynamic lookups the provider failed.', [['l3', metrics.l3.failures]]);
  gauge('cache_keys', 'Keys held in L1.', metrics.l1Keys.size);
  gauge('cache_resolutions', 'Namespace resolutions held in L1.', metrics.l1Resolutions.size);
  gauge('cache_negative_entries', 'FAILED (negative) entries held in L1.', metrics.negativeEntries);
  gauge('applied_position', 'Last ledger position this process applied.', metrics.appliedPosition);
  return `${lines.join('\n')}\n`;
}
