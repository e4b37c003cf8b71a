/**
 * A typed call of autocannon (it ships no types): one keep-alive load run against one HTTPS route,
 * reduced to the figures the benches report. The client trusts the given CA (the benches' servers
 * use a self-signed test CA), passed through autocannon's `tlsOptions` to `tls.connect`.
 */
import { createRequire } from 'node:module';

export interface LoadOptions {
  readonly url: string;
  readonly ca: Buffer;
  readonly method: 'GET' | 'POST';
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly connections: number;
  readonly seconds: number;
}

export interface LoadResult {
  /** Requests answered with 2xx per second, over the run. */
  readonly requestsPerSecond: number;
  /** Latency percentiles, ms (autocannon's histogram). */
  readonly p50: number;
  readonly p99: number;
  readonly ok: number;
  /** Answers that were not 2xx, plus errors and timeouts: any of these make the figure suspect. */
  readonly failed: number;
}

interface AutocannonResult {
  readonly duration: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly '2xx': number;
  readonly latency: { readonly p50: number; readonly p99: number };
}

type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

// autocannon is CommonJS without type declarations: required, and given the shape used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export async function httpLoad(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    method: options.method,
    headers: options.headers,
    ...(options.body === undefined ? {} : { body: options.body }),
    connections: options.connections,
    pipelining: 1,
    duration: options.seconds,
    tlsOptions: { ca: options.ca },
  });
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result['2xx'],
    failed: result.non2xx + result.errors + result.timeouts,
  };
}
