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
}

const CONTEXTS = new WeakMap<FastifyRequest, RequestContext>();

export function contextOf(request: FastifyRequest): RequestContext {
  let context = CONTEXTS.get(request);
  if (context === undefined) {
    context = { principal: null, operation: null, custodian: null, scope: null, code: null };
    CONTEXTS.set(request, context);
  }
  return context;
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
