import { Counter, Gauge, type Registry } from 'prom-client';
import type { CacheMetrics } from './cacheMetrics.js';

/**
 * Registers the key caches' metrics in a prom-client registry, read from `read()` (e.g.
 * `() => ledger.resolver.metrics()`) each time the registry is scraped: hits, misses, evictions and
 * invalidations per layer, provider failures, the L1 sizes, FAILED entries and the applied position.
 * `keyledger serve` registers them in its `/metrics`; an application embedding a Ledger registers
 * them in its own registry.
 */
export function registerCacheMetrics(
  registry: Registry,
  read: () => CacheMetrics,
  prefix = 'keyledger',
): void {
  const registers = [registry];
  const perLayer = (name: string, help: string, pick: (m: CacheMetrics) => readonly [string, number][]) =>
    new Counter({
      name: `${prefix}_${name}`,
      help,
      labelNames: ['layer'],
      registers,
      collect() {
        // The caches keep the totals; the counter shows them as they are at the scrape.
        this.reset();
        for (const [layer, value] of pick(read())) this.inc({ layer }, value);
      },
    });
  const layers = (m: CacheMetrics) =>
    [
      ['l1', m.l1],
      ['l2', m.l2],
      ['l3', m.l3],
    ] as const;
  perLayer('cache_hits_total', 'Key lookups answered by the layer.', (m) =>
    layers(m).map(([l, c]) => [l, c.hits]),
  );
  perLayer('cache_misses_total', 'Key lookups the layer could not answer.', (m) =>
    layers(m).map(([l, c]) => [l, c.misses]),
  );
  perLayer('cache_evictions_total', 'Entries dropped to stay within bounds or on expiry.', (m) =>
    layers(m).map(([l, c]) => [l, c.evictions]),
  );
  perLayer(
    'cache_invalidations_total',
    'Entries evicted or replaced because a ledger event changed them.',
    (m) => layers(m).map(([l, c]) => [l, c.invalidations]),
  );
  perLayer('provider_failures_total', 'Dynamic lookups the provider failed.', (m) => [['l3', m.l3.failures]]);
  const gauge = (name: string, help: string, pick: (m: CacheMetrics) => number | bigint) =>
    new Gauge({
      name: `${prefix}_${name}`,
      help,
      registers,
      collect() {
        this.set(Number(pick(read())));
      },
    });
  gauge('cache_keys', 'Keys held in L1.', (m) => m.l1Keys.size);
  gauge('cache_resolutions', 'Namespace resolutions held in L1.', (m) => m.l1Resolutions.size);
  gauge('cache_negative_entries', 'FAILED (negative) entries held in L1.', (m) => m.negativeEntries);
  gauge('applied_position', 'Last ledger position this process applied.', (m) => m.appliedPosition);
}
