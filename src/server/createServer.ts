import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import rateLimit from '@fastify/rate-limit';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
} from 'fastify';
import { isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import { authorize, type Principal } from '../domain/grants.js';
import type { ServerLimits } from '../host/serverConfig.js';
import type { Ledger } from '../ledger/ledger.js';
import type { StoreAccess } from '../operations/operation.js';
import type { AccessLog } from './accessLog.js';
import { type AuthOptions, authenticator } from './authenticate.js';
import { registerBytesRoute } from './bytesRoutes.js';
import { CONSOLE_ROUTES, defaultConsoleDir, registerConsoleRoutes } from './consoleRoutes.js';
import { EventFeed } from './eventFeed.js';
import { registerEventsRoute } from './eventsRoute.js';
import { registerHealthRoutes } from './healthRoutes.js';
import { requireTlsOffLoopback, urlOf } from './listenAddress.js';
import { openApiDocument } from './openApi.js';
import { problemOf } from './problem.js';
import { contextOf, newContext, principalOf, requestIdOf } from './requestContext.js';
import { PROBLEM_TYPE, sendProblem } from './sendProblem.js';
import { servedOperations } from './servedOperations.js';
import { ServerMetrics } from './serverMetrics.js';
import { tooLarge } from './streamLimit.js';
import { registerUnaryRoute } from './unaryRoutes.js';

export interface TlsFiles {
  /** PEM contents. */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** PEM of the CA that signs client certificates (mTLS); absent: no client certificates asked. */
  readonly clientCa?: string | Buffer;
}

export interface ServerOptions {
  readonly ledger: Ledger;
  /** The ledger's store, for the operations that read it unreplayed (verify, audit-export) and readiness. */
  readonly storeAccess: StoreAccess;
  /** null: plain HTTP, which `listen` allows on a loopback address only. */
  readonly tls: TlsFiles | null;
  readonly auth: AuthOptions;
  readonly limits: ServerLimits;
  readonly heartbeatMs: number;
  /** One entry per request (default: JSON lines on stderr). */
  readonly accessLog: AccessLog;
  /** Reported in the OpenAPI document. */
  readonly version?: string;
  /**
   * The built web console served at `/` (scripts/build-console.mjs); default: the one in the package
   * (dist/console); null: none (`/` is a 404).
   */
  readonly consoleDir?: string | null;
}

export interface KeyledgerServer {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  /** Listens; answers the URL with the real port. Refuses a non-loopback address without TLS. */
  listen(host: string, port: number): Promise<string>;
  /**
   * Stops accepting, ends event streams, lets in-flight requests finish within `limits.shutdownMs`
   * (then drops their connections). The ledger is the caller's to close.
   */
  close(): Promise<void>;
}

/** The routes answered without authentication; every other route needs it (deny by default). */
const OPEN_ROUTES: ReadonlySet<string> = new Set([
  '/healthz',
  '/readyz',
  '/v1/openapi.json',
  // The web console's static files: the page signs in against /v1 itself.
  ...CONSOLE_ROUTES,
]);

/** A path under the API (`/v1`, `/v1/…`), query aside. */
function isApiPath(url: string): boolean {
  return url.startsWith('/v1/') || url === '/v1' || url.startsWith('/v1?');
}

/** The hooks the onRoute hook put first on a route. */
const FIRST_HOOKS = new WeakSet<object>();

/** The key service over HTTPS: every served operation of the table on one Ledger (docs/api.md). */
export async function createServer(options: ServerOptions): Promise<KeyledgerServer> {
  const { ledger, storeAccess, limits } = options;
  const authenticate = authenticator(options.auth);
  const metrics = new ServerMetrics(ledger, storeAccess.store);
  const sse = {
    open: new Set<ServerResponse>(),
    max: limits.maxSseConnections,
    heartbeatMs: options.heartbeatMs,
    feed: new EventFeed(ledger),
    onCountChange: (count: number) => metrics.sseConnections.set(count),
  };
  const serverOptions = {
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
    // Node checks the two timeouts on this interval (30 s by default): often enough to honour them.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.requestTimeoutMs / 4))),
  };
  const tls = options.tls;
  const app = Fastify({
    serverFactory: (handler) =>
      (tls === null
        ? createHttpServer(serverOptions, handler)
        : createHttpsServer(
            {
              ...serverOptions,
              cert: tls.cert,
              key: tls.key,
              ...(tls.clientCa === undefined
                ? {}
                : // Checked per request (401 with a problem), not by failing the handshake.
                  { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }),
            },
            handler,
          )) as Server,
    bodyLimit: limits.jsonBodyBytes,
    logger: false,
    genReqId: requestIdOf,
    return503OnClosing: true,
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      clientError(error, socket, limits.requestTimeoutMs);
    },
    // A URL the router cannot decode (`/v1/%E2%82`) is refused before any hook or the error handler
    // runs; without this Fastify answers its own JSON, not a problem document (issue 12 fuzzing).
    frameworkErrors: (_error: Error, _request: unknown, reply: FastifyReply) => {
      reply.header('x-request-id', String(reply.request.id));
      sendProblem(reply, new KeyledgerError('ERR_INVALID_ARGUMENT', 'the request URL is malformed', {}));
    },
  }) as unknown as FastifyInstance;

  // The raw body of a streamed bytes request is handed on as is (its own limit, streamBodyBytes).
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  // Every request, whatever answers it: its context, its id header, its access-log line and metrics.
  app.decorateRequest('keyledger', null);
  app.addHook('onRequest', (request, reply, done) => {
    request.keyledger = newContext();
    reply.header('x-request-id', request.id);
    observe(request, reply.raw, metrics, options.accessLog);
    // No route matched (an unknown path, or a known one with another method): under /v1 the caller
    // is authenticated here, before its body is read, so a stranger learns nothing of the API (401,
    // never a 404 that tells which routes exist, nor a 400/413 about a body nobody asked for).
    if (request.is404 && isApiPath(request.url)) {
      authenticateInto(request, done);
      return;
    }
    done();
  });
  // Each route's own first hook names the route for the log and metrics and, on every route but the
  // open ones, authenticates (deny by default: a route is open only by name). Decided once per route
  // here, so that no request looks its route up.
  const authenticateRequest = (request: FastifyRequest): Principal | Promise<Principal> => {
    try {
      const principal = authenticate({
        authorization: request.headers.authorization,
        socket: tls === null ? null : (request.raw.socket as TLSSocket),
      });
      return principal instanceof Promise ? principal.catch(refused) : principal;
    } catch (error) {
      throw refused(error);
    }
  };
  const refused = (error: unknown): never => {
    if (isKeyledgerError(error, 'ERR_UNAUTHENTICATED')) {
      metrics.authFailure(error.details.scheme ?? 'none', error.details.reason);
    }
    throw error;
  };
  /** Authenticates the request into its context, then `done` (with the refusal, if refused). */
  const authenticateInto = (request: FastifyRequest, done: (error?: FastifyError) => void): void => {
    const context = contextOf(request);
    let principal: Principal | Promise<Principal>;
    try {
      principal = authenticateRequest(request);
    } catch (error) {
      done(error as FastifyError);
      return;
    }
    if (principal instanceof Promise) {
      principal.then(
        (known) => {
          context.principal = known;
          done();
        },
        (error: FastifyError) => done(error),
      );
      return;
    }
    context.principal = principal;
    done();
  };
  app.addHook('onRoute', (route) => {
    const url = route.url;
    const open = OPEN_ROUTES.has(url);
    // The open routes are not rate limited (the limit is per principal, and they have none).
    if (open) route.config = { ...route.config, rateLimit: false };
    const first: onRequestHookHandler = open
      ? (request, _reply, done) => {
          contextOf(request).route = url;
          done();
        }
      : (request, _reply, done) => {
          contextOf(request).route = url;
          authenticateInto(request, done);
        };
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    // A HEAD route made for a GET may come with the GET's hooks: one is enough.
    if (own.some((hook) => FIRST_HOOKS.has(hook))) return;
    FIRST_HOOKS.add(first);
    route.onRequest = [first, ...own];
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = fromFastify(error, limits);
    contextOf(request).code = sendProblem(reply, known).code;
  });
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    // An unmatched /v1 path was authenticated by the onRequest hook, before its body was read.
    const error = new KeyledgerError('ERR_NOT_FOUND', `no route ${request.method} ${path.slice(0, 200)}`, {
      method: request.method,
      path: path.slice(0, 200),
    });
    contextOf(request).code = sendProblem(reply, error).code;
  });

  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: limits.rateLimit.max,
    timeWindow: limits.rateLimit.timeWindowMs,
    // Per principal (authenticated before this runs on every route it applies to: the open routes
    // opt out in the onRoute hook above, which runs before the plugin's).
    keyGenerator: (request: FastifyRequest) => contextOf(request).principal?.name ?? request.ip,
    // A 429 says when to retry (and the limit); an allowed answer carries no x-ratelimit-* headers:
    // three more headers on every response cost more than the limiter's own count.
    addHeadersOnExceeding: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
    },
    errorResponseBuilder: (_request: FastifyRequest, context: { max: number; ttl: number }) =>
      new KeyledgerError('ERR_RATE_LIMITED', `over the limit of ${context.max} requests`, {
        limit: context.max,
        timeWindowMs: limits.rateLimit.timeWindowMs,
        retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
      }),
  });

  const server = { ledger, storeAccess };
  for (const operation of servedOperations()) {
    if (operation.kind === 'unary') registerUnaryRoute(app, server, operation);
    else if (operation.kind === 'bytes') registerBytesRoute(app, server, operation, limits.streamBodyBytes);
  }
  registerEventsRoute(app, sse);
  registerHealthRoutes(app, ledger, storeAccess.store);
  registerConsoleRoutes(app, options.consoleDir === undefined ? defaultConsoleDir() : options.consoleDir);
  const openApi = JSON.stringify(openApiDocument(options.version ?? '0.0.0'));
  app.get('/v1/openapi.json', async (_request, reply) => {
    reply.header('content-type', 'application/json; charset=utf-8');
    return openApi;
  });
  // Metrics are ledger-wide (every route's counts, the caches, the event lag): an `audit` grant over
  // every custodian, like the other ledger-wide audit reads (a scraper uses an API token).
  app.get('/metrics', async (request, reply) => {
    authorize(principalOf(request), 'audit', null);
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  let closing: Promise<void> | null = null;
  return {
    app,
    metrics,
    async listen(host, port) {
      requireTlsOffLoopback(host, tls !== null);
      await app.listen({ host, port });
      const address = app.server.address();
      const real = typeof address === 'object' && address !== null ? address.port : port;
      return urlOf(tls !== null, host, real);
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };

  async function shutdown(): Promise<void> {
    // Event streams never finish on their own: end them (and let the end reach the client before
    // idle connections are dropped); the clients resume with Last-Event-ID.
    await Promise.all(
      [...sse.open].map(
        (raw) =>
          new Promise<void>((done) => {
            const timer = setTimeout(done, 1000);
            raw.end(() => {
              clearTimeout(timer);
              done();
            });
          }),
      ),
    );
    const timer = setTimeout(() => app.server.closeAllConnections(), limits.shutdownMs);
    try {
      await app.close();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Logs and counts a request once its response is done (or dropped), whatever answered it. */
function observe(
  request: FastifyRequest,
  response: ServerResponse,
  metrics: ServerMetrics,
  log: AccessLog,
): void {
  const done = () => {
    const context = contextOf(request);
    const seconds = (performance.now() - context.started) / 1e3;
    const status = response.statusCode;
    metrics.request(request.method, context.route ?? 'unmatched', status, seconds);
    log({
      time: new Date().toISOString(),
      requestId: String(request.id),
      method: request.method,
      path: (request.url.split('?')[0] ?? '').slice(0, 200),
      principal: context.principal?.name ?? null,
      operation: context.operation,
      custodian: context.custodian,
      scope: context.scope,
      status,
      code: context.code,
      durationMs: Math.round(seconds * 1e6) / 1e3,
    });
  };
  // A response closes once ('on', not 'once': no wrapper per request).
  response.on('close', done);
}

/** Fastify's own failures (body parsing, limits) as the API's codes. */
function fromFastify(error: FastifyError, limits: ServerLimits): unknown {
  if (isKeyledgerError(error)) return error;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge(limits.jsonBodyBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'send application/json (or application/octet-stream to a bytes operation)',
        {},
      );
    default:
      break;
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new KeyledgerError('ERR_INVALID_ARGUMENT', 'the request is malformed (body or headers)', {});
  }
  return error;
}

/** A request Node refused before routing (timeouts, malformed HTTP): a problem, then the socket closes. */
function clientError(error: Error & { code?: string }, socket: Socket, timeoutMs: number): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const response = (socket as unknown as { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && response?.headersSent !== true) {
    const known =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new KeyledgerError('ERR_REQUEST_TIMEOUT', `the request was not received within ${timeoutMs} ms`, {
            timeoutMs,
          })
        : new KeyledgerError('ERR_INVALID_ARGUMENT', 'malformed HTTP request', {});
    // The request never reached routing: a fresh id (the client's header may not have arrived).
    const requestId = randomUUID();
    const problem = problemOf(known, requestId);
    const body = JSON.stringify(problem);
    socket.write(
      `HTTP/1.1 ${problem.status} ${problem.status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nContent-Type: ${PROBLEM_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
