import { z } from 'zod';
import { ERRORS } from '../domain/errors.js';
import type { AnyOperation } from '../operations/operations.js';
import { watch } from '../operations/queryOperations.js';
import { RESULT_TRAILER } from './bytesRoutes.js';
import { servedOperations } from './servedOperations.js';

type Json = Record<string, unknown>;

function schemaOf(type: z.ZodType): Json {
  const { $schema: _, ...schema } = z.toJSONSchema(type, { unrepresentable: 'any' }) as Json;
  return schema;
}

const problemResponse = {
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

function errorResponses(): Json {
  return {
    '400': {
      description: 'bad input (ERR_INVALID_ARGUMENT, …) or ERR_DECRYPTION_FAILED',
      ...problemResponse,
    },
    '401': { description: 'ERR_UNAUTHENTICATED', ...problemResponse },
    '403': { description: 'ERR_FORBIDDEN', ...problemResponse },
    '404': {
      description:
        'ERR_KEY_NOT_FOUND, ERR_SCOPE_NOT_FOUND, ERR_REWRAP_NOT_FOUND (ERR_NOT_FOUND: no such route)',
      ...problemResponse,
    },
    '409': { description: 'a rule refused it; nothing was written', ...problemResponse },
    '413': { description: 'ERR_PAYLOAD_TOO_LARGE', ...problemResponse },
    '429': { description: 'ERR_RATE_LIMITED (see Retry-After)', ...problemResponse },
    '500': { description: 'a fault (ERR_INTERNAL and others)', ...problemResponse },
    '503': { description: 'ERR_STORE_UNAVAILABLE, ERR_SERVER_BUSY', ...problemResponse },
  };
}

function unaryPath(op: AnyOperation): Json {
  return {
    post: {
      operationId: op.name,
      summary: op.summary,
      ...(op.description === undefined ? {} : { description: op.description }),
      // An operation about the caller itself (whoami) needs no grant: any authenticated principal.
      'x-keyledger-permission': 'aboutCaller' in op && op.aboutCaller === true ? 'any' : op.permission,
      'x-keyledger-writes': op.writes,
      requestBody: { required: false, content: { 'application/json': { schema: schemaOf(op.input) } } },
      responses: {
        '200': { description: 'the operation’s result', content: { 'application/json': { schema: {} } } },
        ...errorResponses(),
      },
    },
  };
}

function bytesPath(op: AnyOperation): Json {
  const input = schemaOf(op.input) as { properties?: Record<string, Json>; required?: string[] };
  const takesData = op.name !== 'audit-export';
  const jsonBody = {
    ...input,
    properties: {
      ...(input.properties ?? {}),
      ...(takesData
        ? { data: { type: 'string', contentEncoding: 'base64', description: 'the input bytes' } }
        : {}),
    },
    required: [...(input.required ?? []), ...(takesData ? ['data'] : [])],
  };
  const parameters = Object.entries(input.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: (input.required ?? []).includes(name),
    schema,
    ...(schema.type === 'array' ? { style: 'form', explode: true } : {}),
  }));
  return {
    post: {
      operationId: op.name,
      summary: op.summary,
      'x-keyledger-permission': op.permission,
      description:
        'JSON form: the input fields and `data` (base64) in, the result and `data` (base64) out. Streamed form: Content-Type application/octet-stream, the input fields as query parameters, the raw bytes in and out; the result comes as the HTTP trailer Keyledger-Result.',
      parameters,
      requestBody: {
        required: takesData,
        content: {
          'application/json': { schema: jsonBody },
          'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
        },
      },
      responses: {
        '200': {
          description: `the output bytes; in the streamed form the result is the trailer ${RESULT_TRAILER}`,
          headers: { Trailer: { schema: { type: 'string', const: RESULT_TRAILER } } },
          content: {
            'application/json': { schema: {} },
            'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
          },
        },
        ...errorResponses(),
      },
    },
  };
}

function eventsPath(): Json {
  const input = schemaOf(watch.input) as { properties?: Record<string, Json> };
  return {
    get: {
      operationId: watch.name,
      summary: watch.summary,
      'x-keyledger-permission': watch.permission,
      parameters: [
        ...Object.entries(input.properties ?? {}).map(([name, schema]) => ({
          name,
          in: 'query',
          required: false,
          schema: schema.type === 'array' ? { type: 'string', description: 'comma-separated' } : schema,
        })),
        { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
      ],
      responses: {
        '200': {
          description: 'server-sent events',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        },
        ...errorResponses(),
      },
    },
  };
}

/** The operations endpoints outside /v1: the probes (open) and the metrics (an auditor of `*`). */
function operationsPaths(): Json {
  const probe = (summary: string, codes: Json): Json => ({
    get: { summary, security: [], responses: codes },
  });
  const json = { content: { 'application/json': { schema: { type: 'object' } } } };
  return {
    '/healthz': probe('the process answers', { '200': { description: '{"status":"ok"}', ...json } }),
    '/readyz': probe('the store answers and this process has applied everything in it', {
      '200': { description: 'ready', ...json },
      '503': { description: 'store-unreachable or catching-up', ...json },
    }),
    '/metrics': {
      get: {
        summary: 'Prometheus text (prom-client): requests, latency, auth failures, caches, event lag',
        'x-keyledger-permission': 'audit',
        responses: {
          '200': {
            description: 'the exposition text',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          '401': { description: 'ERR_UNAUTHENTICATED', ...problemResponse },
          '403': { description: 'ERR_FORBIDDEN: needs audit over every custodian (*)', ...problemResponse },
          '429': { description: 'ERR_RATE_LIMITED (see Retry-After)', ...problemResponse },
        },
      },
    },
  };
}

/** The OpenAPI 3.1 document of the API, generated from the operation table and the error table. */
export function openApiDocument(version: string): Json {
  const paths: Json = {};
  for (const op of servedOperations()) {
    if (op.kind === 'unary') paths[`/v1/${op.name}`] = unaryPath(op);
    else if (op.kind === 'bytes') paths[`/v1/${op.name}`] = bytesPath(op);
  }
  paths['/v1/events'] = eventsPath();
  Object.assign(paths, operationsPaths());
  return {
    openapi: '3.1.0',
    info: { title: 'keyledger', version },
    security: [{ bearer: [] }, { mutualTLS: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token (klt_…) or a JWT' },
        mutualTLS: { type: 'mutualTLS' },
      },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'code', 'details', 'requestId'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            code: { type: 'string', enum: Object.keys(ERRORS) },
            details: { type: 'object' },
            requestId: { type: 'string' },
          },
        },
        ...Object.fromEntries(
          Object.entries(ERRORS).map(([code, e]) => [`${code}Details`, schemaOf(e.details)]),
        ),
      },
    },
  };
}
