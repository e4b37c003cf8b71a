import { request } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { lazyInput } from './lazyInput.js';

export interface StreamedAnswer {
  readonly status: number;
  readonly seconds: number;
  readonly outBytes: number;
  /** The `Keyledger-Result` trailer: absent means the server failed after its first byte. */
  readonly result: string | undefined;
}

/**
 * One streamed bytes request (`Content-Type: application/octet-stream`, chunked): `total` bytes of
 * lazy input sent as fast as the server takes them, the answer counted (not kept) as it arrives.
 * Seconds from the request's start to the answer's end.
 */
export async function streamedUpload(
  url: string,
  options: { ca: Buffer; token: string; total: number },
): Promise<StreamedAnswer> {
  const started = process.hrtime.bigint();
  let outBytes = 0;
  let answered!: (answer: { status: number; result: string | undefined }) => void;
  let failed!: (error: Error) => void;
  const answer = new Promise<{ status: number; result: string | undefined }>((resolve, reject) => {
    answered = resolve;
    failed = reject;
  });
  const req = request(
    url,
    {
      method: 'POST',
      ca: options.ca,
      agent: false,
      headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/octet-stream' },
    },
    (res) => {
      res.on('data', (chunk: Buffer) => {
        outBytes += chunk.length;
      });
      res.on('error', failed);
      res.on('aborted', () => failed(new Error('the answer was dropped')));
      res.on('end', () =>
        answered({ status: res.statusCode ?? 0, result: res.trailers['keyledger-result'] }),
      );
    },
  );
  req.on('error', failed);
  await Promise.all([pipeline(Readable.from(lazyInput(options.total)), req), answer]);
  const { status, result } = await answer;
  return { status, seconds: Number(process.hrtime.bigint() - started) / 1e9, outBytes, result };
}
