import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { Principal } from '../domain/grants.js';
import { decodeReasonHeader } from '../operations/reasonHeader.js';

/** What the server learns about a request as it goes, for its handler, access log and metrics. */
export interface RequestContext {
  principal: Principal | null;
  operation: string | null;
  custodian: string | null;
  /** The input's `scope`, when it names one (as given: `<custodian-b64>:<namespace>`). */
  scope: string | null;
  /** The failure's code, when it failed. */
  code: string | null;
  /** The matched route as declared (`/v1/encrypt`), set by its first hook; null: no route matched. */
  route: string | null;
  /** `performance.now()` when the request arrived (the access log's duration). */
  readonly started: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the server's first hook (createServer.ts decorates every request with it). */
    keyledger: RequestContext | null;
  }
}

/** Made once per request by the first hook: a plain field of the request, no side table. */
export function newContext(): RequestContext {
  return {
    principal: null,
    operation: null,
    custodian: null,
    scope: null,
    code: null,
    route: null,
    started: performance.now(),
  };
}

export function contextOf(request: FastifyRequest): RequestContext {
  // A request refused before the hooks (a malformed URL) has none yet.
  request.keyledger ??= newContext();
  return request.keyledger;
}

/** The authenticated principal (the /v1 hook ran before any handler). */
export function principalOf(request: FastifyRequest): Principal {
  const principal = contextOf(request).principal;
  if (principal === null) throw new TypeError('the request was not authenticated');
  return principal;
}

const VISIBLE_ASCII = /^[\x21-\x7e]{1,128}$/;

/** The client's X-Request-Id when it is 1 to 128 visible ASCII characters, else a new UUID. */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && VISIBLE_ASCII.test(given) ? given : randomUUID();
}

/** `Keyledger-Reason`, recorded as the events' reason (percent-escapes decoded: reasonHeader.ts). */
export function reasonOf(request: FastifyRequest): string | undefined {
  const reason = request.headers['keyledger-reason'];
  if (typeof reason !== 'string' || reason.length === 0) return undefined;
  return decodeReasonHeader(reason);
}
