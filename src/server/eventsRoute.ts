import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Subscription } from 'rxjs';
import { KeyledgerError } from '../domain/errors.js';
import { custodiansAllowed } from '../domain/grants.js';
import { scopeKey } from '../domain/identities.js';
import { parseInput } from '../operations/operationInput.js';
import { watch } from '../operations/queryOperations.js';
import type { EventFeed, FeedEvent } from './eventFeed.js';
import { contextOf, principalOf } from './requestContext.js';
import { noteOperation } from './serverContext.js';

export interface EventStreams {
  /** Open streams, ended by a shutdown. */
  readonly open: Set<ServerResponse>;
  readonly max: number;
  readonly heartbeatMs: number;
  /** The one live subscription every stream reads from. */
  readonly feed: EventFeed;
  onCountChange(count: number): void;
}

/**
 * What a stream may hold unsent for a client that does not read: past it the stream is dropped
 * (the client resumes with Last-Event-ID) rather than buffer without bound.
 */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/**
 * `GET /v1/events`: the `watch` operation as server-sent events. `Last-Event-ID` (else `from`)
 * resumes strictly after a position, so a reconnecting client sees no gap and no duplicate. Only
 * the events of custodians the principal may audit are sent; an event about no scope (system keys,
 * checkpoints) only to a principal who may audit every custodian. The input is `watch`'s; the
 * events come from the server's shared feed (eventFeed.ts), not one store subscription per stream.
 */
export function registerEventsRoute(app: FastifyInstance, streams: EventStreams): void {
  app.get('/v1/events', async (request, reply) => {
    noteOperation(request, watch.name, null);
    const principal = principalOf(request);
    const allowed = custodiansAllowed(principal.grants, watch.permission);
    if (allowed !== '*' && allowed.size === 0) {
      throw new KeyledgerError('ERR_FORBIDDEN', `${principal.name} may not audit any custodian`, {
        principal: principal.name,
        permission: watch.permission,
        custodian: null,
      });
    }
    const query = (request.query ?? {}) as Record<string, unknown>;
    const lastEventId = request.headers['last-event-id'];
    const input: Record<string, unknown> = {};
    if (query.types !== undefined) input.types = [query.types].flat().join(',');
    if (query.scope !== undefined) {
      input.scope = [query.scope].flat().flatMap((s) => String(s).split(','));
    }
    const from = typeof lastEventId === 'string' && lastEventId.length > 0 ? lastEventId : query.from;
    if (from !== undefined) input.from = from;
    const { prepared } = parseInput(watch, input);
    if (streams.open.size >= streams.max) {
      throw new KeyledgerError('ERR_SERVER_BUSY', `at the limit of ${streams.max} event streams`, {
        limit: streams.max,
        resource: 'event streams',
      });
    }
    const types = prepared.types === undefined ? null : new Set<string>(prepared.types);
    const scopes = prepared.scopes === undefined ? null : new Set(prepared.scopes.map(scopeKey));
    const wanted = (event: FeedEvent) =>
      (types === null || types.has(event.type)) &&
      (scopes === null || (event.scopeKey !== null && scopes.has(event.scopeKey))) &&
      mayAudit(allowed, event);
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-request-id': String(request.id),
    });
    // A comment first: the client knows the stream is open before the first event.
    raw.write(': connected\n\n');
    streams.open.add(raw);
    streams.onCountChange(streams.open.size);
    const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), streams.heartbeatMs);
    let subscription: Subscription | null = null;
    const stop = () => {
      clearInterval(heartbeat);
      subscription?.unsubscribe();
      if (streams.open.delete(raw)) streams.onCountChange(streams.open.size);
    };
    raw.once('close', stop);
    subscription = streams.feed.events(prepared.from).subscribe({
      next: (event) => {
        if (!wanted(event)) return;
        raw.write(event.frame);
        if (raw.writableLength > MAX_UNSENT_BYTES) {
          stop();
          raw.destroy();
        }
      },
      error: (error: unknown) => {
        contextOf(request).code = error instanceof KeyledgerError ? error.code : 'ERR_INTERNAL';
        stop();
        // No terminating event: the client reconnects with Last-Event-ID and resumes.
        raw.destroy();
      },
      complete: () => {
        stop();
        raw.end();
      },
    });
    return reply;
  });
}

function mayAudit(allowed: '*' | ReadonlySet<string>, event: FeedEvent): boolean {
  if (allowed === '*') return true;
  return event.custodian !== null && allowed.has(event.custodian);
}
