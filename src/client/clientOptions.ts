import { KeyledgerError } from '../domain/errors.js';

/** How a KeyledgerClient reaches its server. */
export interface KeyledgerClientOptions {
  /** The server's base URL, `https://host:port` (http: only for a loopback address). */
  readonly url: string;
  /** A bearer token: an API token (`klt_…`) or a JWT. Never logged, never put in an error. */
  readonly token?: string;
  /** PEM of the CA(s) that signed the server's certificate, for a private CA (default: Node's roots). */
  readonly ca?: string | Buffer;
  /** PEM client certificate and key, for mutual TLS instead of (or besides) a token. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** How long a request may wait for the server without a byte moving (default 30000 ms). */
  readonly timeoutMs?: number;
  /**
   * events$: how many reconnects in a row may fail before the Observable errors with
   * ERR_SERVER_UNAVAILABLE (default 8, with backoff from 250 ms doubling to 5 s between them).
   */
  readonly maxReconnects?: number;
  /** events$: a stream silent (no event, no heartbeat) this long is taken as dropped (default 45000 ms). */
  readonly eventsIdleMs?: number;
}

export interface ResolvedClientOptions {
  readonly base: URL;
  /** The base URL as errors name it (origin only: no credentials, no path). */
  readonly url: string;
  readonly token: string | undefined;
  readonly tls: {
    readonly ca?: string | Buffer;
    readonly cert?: string | Buffer;
    readonly key?: string | Buffer;
  };
  readonly timeoutMs: number;
  readonly maxReconnects: number;
  readonly eventsIdleMs: number;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
// A token travels in a header: visible ASCII only (a newline would split the header).
const TOKEN = /^[\x21-\x7e]{1,8192}$/;

function invalid(message: string, details: Record<string, string | number>): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, details);
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0)
    throw invalid(`${name} takes a whole number ≥ 0`, { [name]: value });
  return value;
}

/** Checks the options once, at construction: a bad URL or token is refused before any request. */
export function resolveClientOptions(options: KeyledgerClientOptions): ResolvedClientOptions {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw invalid('the server URL is not a URL: give https://host:port', {
      server: options.url.slice(0, 200),
    });
  }
  if (base.username !== '' || base.password !== '') {
    throw invalid('the server URL must not carry credentials: give a token instead', { server: base.host });
  }
  const loopback = LOOPBACK.has(base.hostname);
  if (base.protocol !== 'https:' && !(base.protocol === 'http:' && loopback)) {
    throw invalid('the server URL takes https: (http: only on a loopback address)', { server: base.origin });
  }
  if ((base.pathname !== '/' && base.pathname !== '') || base.search !== '' || base.hash !== '') {
    throw invalid('the server URL is the server’s base: https://host:port, no path', { server: base.origin });
  }
  if (options.token !== undefined && !TOKEN.test(options.token)) {
    // Neither the token nor its length is echoed.
    throw invalid('the token must be 1 to 8192 visible ASCII characters', {});
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw invalid('a client certificate needs its key, and a key its certificate', {});
  }
  return {
    base,
    url: base.origin,
    token: options.token,
    tls: {
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
    },
    timeoutMs: positiveInt(options.timeoutMs, 30_000, 'timeoutMs'),
    maxReconnects: positiveInt(options.maxReconnects, 8, 'maxReconnects'),
    eventsIdleMs: positiveInt(options.eventsIdleMs, 45_000, 'eventsIdleMs'),
  };
}
