import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Observable, Subscription } from 'rxjs';
import { KeyledgerError } from '../domain/errors.js';
import { custodiansAllowed } from '../domain/grants.js';
import { parseInput } from '../operations/operationInput.js';
import { watch } from '../operations/queryOperations.js';
import { contextOf, principalOf } from './requestContext.js';
import { hostFor, noteOperation, type ServerContext } from './serverContext.js';

export interface EventStreams {
  /** Open streams, ended by a shutdown. */
  readonly open: Set<ServerResponse>;
  readonly max: number;
  readonly heartbeatMs: number;
  onCountChange(count: number): void;
}

/**
 * What a stream may hold unsent for a client that does not read: past it the stream is dropped
 * (the client resumes with Last-Event-ID) rather than buffer without bound.
 */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

interface WatchItem {
  readonly position: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

/**
 * `GET /v1/events`: the `watch` operation as server-sent events. `Last-Event-ID` (else `from`)
 * resumes strictly after a position, so a reconnecting client sees no gap and no duplicate. Only
 * the events of custodians the principal may audit are sent; an event about no scope (system keys,
 * checkpoints) only to a principal who may audit every custodian.
 */
export function registerEventsRoute(
  app: FastifyInstance,
  server: ServerContext,
  streams: EventStreams,
): void {
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
    const events = watch.run(prepared, hostFor(server, request, reply)) as Observable<WatchItem>;
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
    subscription = events.subscribe({
      next: (event) => {
        if (!mayAudit(allowed, event)) return;
        raw.write(`id: ${event.position}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
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

function mayAudit(allowed: '*' | ReadonlySet<string>, event: WatchItem): boolean {
  if (allowed === '*') return true;
  const custodian = event.data.custodian;
  return typeof custodian === 'string' && allowed.has(custodian);
}
