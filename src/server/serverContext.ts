import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import type { StoreAccess } from '../operations/operation.js';
import { contextOf, principalOf, reasonOf } from './requestContext.js';
import { ServerHost } from './serverHost.js';

/** What every route needs of the server: the shared ledger and store. */
export interface ServerContext {
  readonly ledger: Ledger;
  readonly storeAccess: StoreAccess;
}

/**
 * The host of one request. Its signal aborts when the client goes away before the answer is
 * complete, so a long operation stops at its next safe point.
 */
export function hostFor(server: ServerContext, request: FastifyRequest, reply: FastifyReply): ServerHost {
  // Made only when an operation asks for it (few do; an AbortSignal, and a listener on every
  // response, cost more than a small request's crypto). The response (not the socket, which
  // keep-alive shares between requests) closes once per request; closed before it finished means
  // the client went away (Node marks such a response destroyed before it emits 'close').
  const response = reply.raw;
  let abort: AbortController | null = null;
  const signal = (): AbortSignal => {
    if (abort === null) {
      const made = new AbortController();
      abort = made;
      if (response.destroyed && !response.writableFinished) made.abort();
      else {
        response.once('close', () => {
          if (!response.writableFinished) made.abort();
        });
      }
    }
    return abort.signal;
  };
  return new ServerHost({
    ledger: server.ledger,
    storeAccess: server.storeAccess,
    principal: principalOf(request),
    reason: reasonOf(request),
    requestId: String(request.id),
    signal,
  });
}

/** Notes the operation, its custodian and scope for the access log. */
export function noteOperation(
  request: FastifyRequest,
  operation: string,
  custodian: string | null,
  input?: Readonly<Record<string, unknown>>,
): void {
  const context = contextOf(request);
  context.operation = operation;
  context.custodian = custodian;
  const scope = input?.scope;
  context.scope = typeof scope === 'string' ? scope.slice(0, 300) : null;
}
