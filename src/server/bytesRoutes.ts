import type { ServerResponse } from 'node:http';
import { Readable, Writable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KeyledgerError } from '../domain/errors.js';
import type { AnyOperation } from '../operations/operations.js';
import { nextTurn } from './nextTurn.js';
import { contextOf, principalOf } from './requestContext.js';
import { checkRequest, runChecked } from './runOperation.js';
import { writeProblem } from './sendProblem.js';
import { hostFor, noteOperation, type ServerContext } from './serverContext.js';
import { byteLimit, tooLarge } from './streamLimit.js';

export const RESULT_TRAILER = 'Keyledger-Result';

/**
 * `POST /v1/<name>` of a bytes operation (encrypt, decrypt, audit-export), in two forms chosen by
 * the request's Content-Type: JSON (input fields + base64 `data`, answered with the result + base64
 * `data`, bounded by the JSON body limit) or octet-stream (input fields as query parameters, the raw
 * body in, the raw output streamed back with the result as the `Keyledger-Result` trailer).
 */
export function registerBytesRoute(
  app: FastifyInstance,
  server: ServerContext,
  operation: AnyOperation,
  streamBodyBytes: number | undefined,
): void {
  app.post(`/v1/${operation.name}`, async (request, reply) => {
    noteOperation(request, operation.name, null);
    if (request.body instanceof Readable) {
      return streamed(server, operation, request, reply, request.body, streamBodyBytes);
    }
    return jsonForm(server, operation, request, reply);
  });
}

async function jsonForm(
  server: ServerContext,
  operation: AnyOperation,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<string> {
  const body = (request.body ?? {}) as Record<string, unknown>;
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'the body must be a JSON object', {});
  }
  const { data, ...fields } = body;
  const takesData = operation.name !== 'audit-export';
  const bytes = typeof data === 'string' ? decodeBase64(data) : null;
  if (takesData && bytes === null) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'data must be the input bytes in base64', {
      data: typeof data,
    });
  }
  if (!takesData && data !== undefined) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${operation.name} takes no data`, {
      data: typeof data,
    });
  }
  const checked = checkRequest(operation, fields, principalOf(request));
  noteOperation(request, operation.name, checked.custodian, checked.input);
  const chunks: Buffer[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  const input = bytes ?? Buffer.alloc(0);
  // Run with the other requests of this turn (nextTurn.ts: what it saves under load).
  await nextTurn();
  const result = await runChecked(operation, checked, hostFor(server, request, reply), { input, output });
  reply.header('content-type', 'application/json; charset=utf-8');
  return withData(result, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
}

/**
 * The result object and the output's base64 as `data`, as one JSON text: the base64 (no character
 * JSON escapes) is spliced in rather than copied into a new object that JSON.stringify scans again.
 */
export function withData(result: unknown, output: Buffer): string {
  const data = output.toString('base64');
  if (typeof result !== 'object' || result === null || Array.isArray(result) || 'data' in result) {
    return JSON.stringify({ ...(result as object), data });
  }
  const json = JSON.stringify(result);
  return json === '{}' ? `{"data":"${data}"}` : `${json.slice(0, -1)},"data":"${data}"}`;
}

const BASE64_TAIL = /^[A-Za-z0-9+/]{2}[A-Za-z0-9+/=]{2}$/;

/**
 * Padded base64 decoded, or null. Node's decoder skips what is not base64, so a decoded length
 * short of what the text's length promises shows a bad character without a regular expression
 * over the whole body (which cost more than encrypting a small one); the last four characters,
 * where padding goes, are checked exactly, and `-`/`_` (which Node also decodes) are refused.
 */
function decodeBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0) return null;
  if (text.length === 0) return Buffer.alloc(0);
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const decoded = Buffer.from(text, 'base64');
  const ok =
    decoded.length === (text.length / 4) * 3 - padding &&
    BASE64_TAIL.test(text.slice(-4)) &&
    !text.includes('-') &&
    !text.includes('_');
  return ok ? decoded : null;
}

/** The query as the operation's input: a field the schema declares an array is always one. */
export function queryInput(operation: AnyOperation, query: unknown): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const field = operation.input.shape[name] as { _zod?: { def?: unknown } } | undefined;
    input[name] = field !== undefined && isArrayField(field) && !Array.isArray(value) ? [value] : value;
  }
  return input;
}

function isArrayField(schema: { _zod?: { def?: unknown } }): boolean {
  let def = schema._zod?.def as { type?: string; innerType?: { _zod?: { def?: unknown } } } | undefined;
  while (def?.type === 'optional' || def?.type === 'default' || def?.type === 'nullable') {
    def = def.innerType?._zod?.def as typeof def;
  }
  return def?.type === 'array';
}

async function streamed(
  server: ServerContext,
  operation: AnyOperation,
  request: FastifyRequest,
  reply: FastifyReply,
  body: Readable,
  limit: number | undefined,
): Promise<FastifyReply> {
  const declared = Number(request.headers['content-length'] ?? Number.NaN);
  if (limit !== undefined && declared > limit) throw tooLarge(limit);
  const checked = checkRequest(operation, queryInput(operation, request.query), principalOf(request));
  noteOperation(request, operation.name, checked.custodian, checked.input);
  const raw = reply.raw;
  const requestId = String(request.id);
  reply.hijack();
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    raw.writeHead(200, {
      ...headersOf(reply),
      'content-type': 'application/octet-stream',
      trailer: RESULT_TRAILER,
    });
  };
  const output = responseWriter(raw, start);
  const input = body.pipe(byteLimit(limit));
  body.once('error', (error) => input.destroy(error));
  try {
    const result = await runChecked(operation, checked, hostFor(server, request, reply), { input, output });
    start();
    raw.addTrailers({ [RESULT_TRAILER]: JSON.stringify(result) });
    raw.end();
  } catch (error) {
    if (!started && !raw.destroyed) {
      contextOf(request).code = writeProblem(raw, error, requestId).code;
    } else {
      // Output went out already: the missing trailer (and terminating chunk) tells the client it failed.
      contextOf(request).code = error instanceof KeyledgerError ? error.code : 'ERR_INTERNAL';
      raw.destroy();
    }
    body.resume();
  }
  return reply;
}

function headersOf(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) headers[name] = String(value);
  }
  return headers;
}

/** A Writable onto the response: headers go out with the first byte, backpressure is honoured. */
function responseWriter(raw: ServerResponse, start: () => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (raw.destroyed) {
        callback(new Error('the client went away'));
        return;
      }
      if (chunk.length === 0) {
        callback();
        return;
      }
      start();
      if (raw.write(chunk)) {
        callback();
        return;
      }
      const done = () => {
        raw.off('drain', done);
        raw.off('close', done);
        callback(raw.destroyed ? new Error('the client went away') : null);
      };
      raw.on('drain', done);
      raw.on('close', done);
    },
  });
}
