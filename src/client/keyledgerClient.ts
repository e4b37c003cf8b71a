import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Duplex, PassThrough, type Writable } from 'node:stream';
import type { Observable } from 'rxjs';
import { KeyledgerError } from '../domain/errors.js';
import {
  type BytesName,
  type BytesResult,
  type ByteTransfer,
  type CallOptions,
  checkRequestId,
  type InputOf,
  operationOfKind,
  type UnaryName,
  type WatchItem,
} from '../operations/keyledgerApi.js';
import type { OutputOf } from '../operations/operations.js';
import { OperationsApi } from '../operations/operationsApi.js';
import { encodeReasonHeader } from '../operations/reasonHeader.js';
import {
  type KeyledgerClientOptions,
  type ResolvedClientOptions,
  resolveClientOptions,
} from './clientOptions.js';
import { HttpTransport } from './httpTransport.js';
import { inputQuery } from './inputQuery.js';
import { serverUnavailable } from './problemError.js';
import { remoteEvents } from './remoteEvents.js';

export type { KeyledgerClientOptions } from './clientOptions.js';

// A reason travels in a header: printable ASCII only (the server reads header bytes as Latin-1).

/**
 * KeyledgerApi over the HTTPS API of `keyledger serve` (docs/api.md): the same operations, results
 * and error codes as the in-process LedgerApi. A problem answer is thrown as the KeyledgerError the
 * server threw; an unreachable server is ERR_SERVER_UNAVAILABLE. The actor of every event written is
 * the principal the token or certificate authenticates: there is no way to pass one.
 */
export class KeyledgerClient extends OperationsApi {
  readonly #options: ResolvedClientOptions;
  readonly #transport: HttpTransport;

  constructor(options: KeyledgerClientOptions) {
    super();
    this.#options = resolveClientOptions(options);
    this.#transport = new HttpTransport(this.#options);
  }

  /** The server's origin. */
  get url(): string {
    return this.#options.url;
  }

  async call<N extends UnaryName>(name: N, input: InputOf<N>, options?: CallOptions): Promise<OutputOf<N>> {
    const operation = operationOfKind(name, 'unary');
    const response = await this.#transport.request({
      method: 'POST',
      path: `/v1/${operation.name}`,
      headers: { ...headersOf(options), 'content-type': 'application/json', accept: 'application/json' },
      body: Buffer.from(JSON.stringify(input ?? {})),
    });
    await this.#transport.expectOk(response);
    return (await this.#transport.readJson(response)) as OutputOf<N>;
  }

  stream<N extends BytesName>(name: N, input: InputOf<N>, options?: CallOptions): ByteTransfer<N> {
    const body = new PassThrough();
    const output = new PassThrough();
    const stream = Duplex.from({ writable: body, readable: output });
    const result = this.#streamed(name, input, options, body, output);
    result.catch((error: unknown) => {
      body.destroy();
      stream.destroy(error as Error);
    });
    return { stream, result };
  }

  events$(filter: InputOf<'watch'> = {}): Observable<WatchItem> {
    operationOfKind('watch', 'events');
    return remoteEvents(this.#transport, {
      query: inputQuery(filter, 'comma'),
      maxReconnects: this.#options.maxReconnects,
      idleMs: this.#options.eventsIdleMs,
    }) as Observable<WatchItem>;
  }

  async close(): Promise<void> {
    this.#transport.close();
  }

  /** The JSON form: the bytes as base64 in the body and in the answer (bounded by the server's body limit). */
  protected async bytes<N extends 'encrypt' | 'decrypt'>(
    name: N,
    input: InputOf<N>,
    data: Uint8Array,
    options: CallOptions | undefined,
  ): Promise<BytesResult<N>> {
    const operation = operationOfKind(name, 'bytes');
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const response = await this.#transport.request({
      method: 'POST',
      path: `/v1/${operation.name}`,
      headers: { ...headersOf(options), 'content-type': 'application/json', accept: 'application/json' },
      body: Buffer.from(JSON.stringify({ ...(input as object), data: bytes.toString('base64') })),
    });
    await this.#transport.expectOk(response);
    const answer = (await this.#transport.readJson(response)) as Record<string, unknown> | null;
    if (answer === null || typeof answer.data !== 'string') {
      throw serverUnavailable(this.url, 'invalid-response');
    }
    const { data: out, ...result } = answer;
    return { result: result as OutputOf<N>, data: Buffer.from(out as string, 'base64') };
  }

  /**
   * The streamed form: the body is sent as it is written, the answer passed on as it comes. The
   * result is the `Keyledger-Result` trailer; an answer that ends without it failed after its first
   * byte, and what was passed on must not be used (decrypt: ERR_DECRYPTION_FAILED, as in process).
   */
  async #streamed<N extends BytesName>(
    name: N,
    input: InputOf<N>,
    options: CallOptions | undefined,
    body: PassThrough,
    output: PassThrough,
  ): Promise<OutputOf<N>> {
    const operation = operationOfKind(name, 'bytes');
    const failed = (reason: string, cause?: unknown) =>
      name === 'decrypt'
        ? new KeyledgerError('ERR_DECRYPTION_FAILED', 'decryption failed', {}, { cause })
        : serverUnavailable(this.url, reason, cause);
    const response = await this.#transport.request({
      method: 'POST',
      path: `/v1/${operation.name}`,
      query: inputQuery(input as object, 'repeat'),
      headers: {
        ...headersOf(options),
        'content-type': 'application/octet-stream',
        accept: 'application/octet-stream',
      },
      body,
    });
    await this.#transport.expectOk(response);
    try {
      await passOn(response, output);
    } catch (error) {
      throw failed('stream-cut', error);
    }
    const trailer = response.trailers['keyledger-result'];
    if (typeof trailer !== 'string') throw failed('no-result');
    let result: unknown;
    try {
      result = JSON.parse(trailer);
    } catch (error) {
      throw failed('invalid-result', error);
    }
    output.end();
    return result as OutputOf<N>;
  }
}

function headersOf(options: CallOptions | undefined): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  const reason = options?.reason;
  if (reason !== undefined && reason !== '') {
    headers['keyledger-reason'] = encodeReasonHeader(reason);
  }
  const requestId = checkRequestId(options?.requestId);
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  return headers;
}

/** The response's bytes into `output` with backpressure, without ending it (the trailer decides). */
async function passOn(response: IncomingMessage, output: Writable): Promise<void> {
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (output.destroyed) throw new Error('the reader went away');
    if (!output.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          output.off('drain', done);
          output.off('close', done);
          resolve();
        };
        output.on('drain', done);
        output.on('close', done);
      });
    }
  }
}
