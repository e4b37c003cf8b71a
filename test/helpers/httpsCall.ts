import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface CallOptions {
  readonly token?: string;
  /** Test servers: the trusted client certificate (CA-signed) or one of another CA. */
  readonly cert?: 'trusted' | 'untrusted';
  readonly json?: unknown;
  readonly body?: Buffer;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly trailers: NodeJS.Dict<string>;
  readonly bytes: Buffer;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers field by field and assert on them
  readonly json: any;
}

export interface HttpsCallOptions extends CallOptions {
  /** The CA the server's certificate is checked against. */
  readonly ca: Buffer;
  readonly clientCert?: { readonly cert: Buffer; readonly key: Buffer };
}

/** One HTTPS request, read to its end; a response that is dropped midway rejects. */
export function httpsCall(
  base: string,
  method: string,
  path: string,
  call: HttpsCallOptions,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const headers: Record<string, string> = { ...call.headers };
    let body: Buffer | undefined = call.body;
    if (call.json !== undefined) {
      body = Buffer.from(JSON.stringify(call.json));
      headers['content-type'] = 'application/json';
    }
    if (call.contentType !== undefined) headers['content-type'] = call.contentType;
    if (call.token !== undefined) headers.authorization = `Bearer ${call.token}`;
    const req = httpsRequest(
      new URL(path, base),
      { method, headers, ca: call.ca, agent: false, ...(call.clientCert ?? {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('response aborted')));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const text = bytes.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            trailers: res.trailers,
            bytes,
            text,
            json,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
