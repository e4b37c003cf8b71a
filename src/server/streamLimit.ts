import { Transform, type TransformCallback } from 'node:stream';
import { KeyledgerError } from '../domain/errors.js';

/** Passes bytes on until `limit`, then fails with ERR_PAYLOAD_TOO_LARGE (a streamed body's limit). */
export function byteLimit(limit: number | undefined): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (limit !== undefined && seen > limit) {
        callback(tooLarge(limit));
        return;
      }
      callback(null, chunk);
    },
  });
}

export function tooLarge(limit: number): KeyledgerError {
  return new KeyledgerError('ERR_PAYLOAD_TOO_LARGE', `the body is over the limit of ${limit} bytes`, {
    limitBytes: limit,
  });
}
