import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Ledger } from '../ledger/ledger.js';
import type { EventStore } from '../store/eventStore.js';

/**
 * The server's Prometheus metrics, in a registry of its own (several servers can share a process, as
 * the tests do): requests and their latency per route and status, authentication failures, the key
 * caches (read from the resolver when scraped) and the event lag of this process's view.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #latency: Histogram<'method' | 'route' | 'status'>;
  readonly #authFailures: Counter<'scheme' | 'reason'>;
  readonly sseConnections: Gauge;

  constructor(ledger: Ledger, store: EventStore) {
    const registers = [this.registry];
    this.#requests = new Counter({
      name: 'keyledger_http_requests_total',
      help: 'HTTP requests answered, by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'keyledger_http_request_duration_seconds',
      help: 'HTTP request latency, by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#authFailures = new Counter({
      name: 'keyledger_auth_failures_total',
      help: 'Requests refused as unauthenticated, by scheme and reason',
      labelNames: ['scheme', 'reason'],
      registers,
    });
    this.sseConnections = new Gauge({
      name: 'keyledger_sse_connections',
      help: 'Open event streams (GET /v1/events)',
      registers,
    });
    const cache = (
      name: string,
      help: string,
      pick: (m: ReturnType<Ledger['resolver']['metrics']>) => [string, number][],
    ) =>
      new Counter({
        name,
        help,
        labelNames: ['layer'],
        registers,
        collect() {
          this.reset();
          for (const [layer, value] of pick(ledger.resolver.metrics())) this.inc({ layer }, value);
        },
      });
    cache('keyledger_cache_hits_total', 'Key cache hits per layer', (m) => [
      ['l1', m.l1.hits],
      ['l2', m.l2.hits],
      ['l3', m.l3.hits],
    ]);
    cache('keyledger_cache_misses_total', 'Key cache misses per layer', (m) => [
      ['l1', m.l1.misses],
      ['l2', m.l2.misses],
      ['l3', m.l3.misses],
    ]);
    cache('keyledger_cache_evictions_total', 'Key cache evictions per layer', (m) => [
      ['l1', m.l1.evictions],
      ['l2', m.l2.evictions],
      ['l3', m.l3.evictions],
    ]);
    cache('keyledger_cache_invalidations_total', 'Key cache invalidations per layer', (m) => [
      ['l1', m.l1.invalidations],
      ['l2', m.l2.invalidations],
      ['l3', m.l3.invalidations],
    ]);
    new Gauge({
      name: 'keyledger_cache_l1_keys',
      help: 'Keys held in the L1 cache',
      registers,
      collect() {
        this.set(ledger.resolver.metrics().l1Keys.size);
      },
    });
    new Gauge({
      name: 'keyledger_applied_position',
      help: 'The last ledger position this process applied',
      registers,
      collect() {
        this.set(Number(ledger.position));
      },
    });
    new Gauge({
      name: 'keyledger_event_lag',
      help: 'Events in the store this process has not applied yet (store head minus applied position)',
      registers,
      async collect() {
        try {
          const head = await store.headPosition();
          const lag = head - ledger.position;
          this.set(Number(lag > 0n ? lag : 0n));
        } catch {
          // The store is down: readiness says so; the last value stays.
        }
      },
    });
  }

  request(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.#requests.inc(labels);
    this.#latency.observe(labels, seconds);
  }

  authFailure(scheme: string, reason: string): void {
    this.#authFailures.inc({ scheme, reason });
  }
}
