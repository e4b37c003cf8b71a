import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerCacheMetrics } from '../cache/cacheCollectors.js';
import type { Ledger } from '../ledger/ledger.js';
import type { EventStore } from '../store/eventStore.js';

/**
 * The server's Prometheus metrics, in a registry of its own (several servers can share a process, as
 * the tests do): requests and their latency per route and status, authentication failures, the key
 * caches (registerCacheMetrics: read from the resolver when scraped) and the event lag of this process's view.
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
    registerCacheMetrics(this.registry, () => ledger.resolver.metrics());
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
