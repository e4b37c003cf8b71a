import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isKeyledgerError, type KeyledgerError } from '../domain/errors.js';
import type { ResolvedClientOptions } from './clientOptions.js';
import { problemError, serverUnavailable } from './problemError.js';

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  /** Under the base URL: `/v1/list-scopes`. */
  readonly path: string;
  readonly query?: URLSearchParams;
  readonly headers?: OutgoingHttpHeaders;
  /** A whole body, or a stream sent as it is read (chunked). */
  readonly body?: Buffer | Readable;
  /** Idle timeout of the connection for this request (default: the client's timeoutMs). */
  readonly idleMs?: number;
  /** Aborts the request (and its response). */
  readonly signal?: AbortSignal;
}

/** The most of an error or JSON body read into memory (a result is plain JSON; a listing may be big). */
const JSON_LIMIT = 256 * 1024 * 1024;
const PROBLEM_LIMIT = 64 * 1024;

/**
 * HTTPS requests to one server, over one keep-alive agent with the client's TLS options. Every
 * failure to reach the server (refused, reset, timed out, an untrusted certificate) is
 * ERR_SERVER_UNAVAILABLE naming the server's origin and an OS/TLS code, never the token.
 */
export class HttpTransport {
  readonly #options: ResolvedClientOptions;
  readonly #agent: http.Agent;
  readonly #https: boolean;

  constructor(options: ResolvedClientOptions) {
    this.#options = options;
    this.#https = options.base.protocol === 'https:';
    this.#agent = this.#https
      ? new https.Agent({ keepAlive: true, ...options.tls })
      : new http.Agent({ keepAlive: true });
  }

  get url(): string {
    return this.#options.url;
  }

  /** Resolves with the response once its headers arrived (whatever its status). */
  request(request: HttpRequest): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const url = new URL(request.path, this.#options.base);
      if (request.query !== undefined) url.search = request.query.toString();
      const headers: OutgoingHttpHeaders = { ...request.headers };
      if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
      const send = this.#https ? https.request : http.request;
      const req = send(url, {
        method: request.method,
        agent: this.#agent,
        headers,
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      });
      req.setTimeout(request.idleMs ?? this.#options.timeoutMs, () =>
        req.destroy(serverUnavailable(this.url, 'timeout')),
      );
      req.on('error', (error) => reject(this.unavailable(error)));
      req.on('response', resolve);
      const body = request.body;
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      // A server may answer (a problem) before it read the whole body: the request side's failure
      // then is no news; the response says what happened.
      else pipeline(body, req).catch(() => {});
    });
  }

  /** A failure on the way to or from the server as ERR_SERVER_UNAVAILABLE (a KeyledgerError stays as it is). */
  unavailable(error: unknown): KeyledgerError {
    if (isKeyledgerError(error)) return error;
    const code = (error as { code?: unknown }).code;
    return serverUnavailable(this.url, typeof code === 'string' ? code : 'connection failed', error);
  }

  /** Throws the error a non-200 response stands for: its problem, or the status. */
  async expectOk(response: IncomingMessage): Promise<void> {
    const status = response.statusCode ?? 0;
    if (status === 200) return;
    const type = String(response.headers['content-type'] ?? '');
    let body: Buffer | null = null;
    try {
      body = await this.readBody(response, PROBLEM_LIMIT);
    } catch {
      body = null;
    }
    if (body !== null && /json/i.test(type)) {
      let problem: unknown;
      try {
        problem = JSON.parse(body.toString('utf8'));
      } catch {
        problem = null;
      }
      if (problem !== null) throw problemError(status, problem);
    }
    // Not a keyledger answer: a proxy or load balancer in the way, or another service.
    if (status === 502 || status === 503 || status === 504)
      throw serverUnavailable(this.url, `http-${status}`);
    throw problemError(status, { title: `the server answered HTTP ${status} without a problem document` });
  }

  async readBody(response: IncomingMessage, limit: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) {
          response.destroy();
          throw serverUnavailable(this.url, 'response-too-large');
        }
        parts.push(chunk);
      }
    } catch (error) {
      throw this.unavailable(error);
    }
    return Buffer.concat(parts);
  }

  /** A 200 response's JSON body. */
  async readJson(response: IncomingMessage): Promise<unknown> {
    const body = await this.readBody(response, JSON_LIMIT);
    try {
      return JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw serverUnavailable(this.url, 'invalid-response', error);
    }
  }

  close(): void {
    this.#agent.destroy();
  }
}
