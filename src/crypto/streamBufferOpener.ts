import { DecryptionFailedError } from './decryptionFailedError.js';
import { zeroDerived } from './derivedKey.js';
import { NONCE_BYTES, STREAM_HEADER_BYTES, STREAM_MAX_CHUNKS, TAG_BYTES } from './envelopeFormat.js';
import type { DecryptionKeyInfo, ScopeCheck } from './expectedScope.js';
import type { KeySource } from './keySource.js';
import {
  AuthorizeRefusal,
  type OpenedStreamHeader,
  openStreamChunk,
  openStreamHeader,
} from './streamHeaderOpener.js';

/** What opening a whole stream-format ciphertext answers. */
export interface OpenedBuffer {
  readonly plaintext: Buffer;
  readonly keyInfo: DecryptionKeyInfo;
}

/**
 * A stream-format ciphertext already in memory, opened whole (EnvelopeStreams.decryptBuffer): the
 * same checks as DecryptStream, from the same code (streamHeaderOpener.ts), then every chunk's tag,
 * records of C + 16 bytes, the shorter remainder the final chunk — without the Duplex, its
 * buffering and its events. The plaintext is released only once every tag verified (the stream
 * releases chunk by chunk).
 *
 * Every failure is one DecryptionFailedError (nothing says which part was wrong); what the
 * authorize hook throws is thrown as is. Partial plaintext and the derived key are zeroed.
 */
export async function openStreamBuffer(
  keys: KeySource,
  data: Buffer,
  callerAad: Buffer,
  expected: ScopeCheck | null,
  authorize: ((custodian: string) => void) | undefined,
): Promise<OpenedBuffer> {
  try {
    // The smallest stream is a header and a lone final tag.
    if (data.length < STREAM_HEADER_BYTES + TAG_BYTES) throw new DecryptionFailedError();
    // A copy: the caller's buffer may change while the key lookup awaits.
    const header = Buffer.from(data.subarray(0, STREAM_HEADER_BYTES));
    const opened = await openStreamHeader(keys, header, callerAad, expected, authorize);
    try {
      return { plaintext: openChunks(opened, data.subarray(STREAM_HEADER_BYTES)), keyInfo: opened.keyInfo };
    } finally {
      zeroDerived(opened.derived);
    }
  } catch (error) {
    if (error instanceof AuthorizeRefusal) throw error.error;
    throw new DecryptionFailedError();
  }
}

/** Every chunk opened in order; the plaintexts joined once every tag verified (zeroed otherwise). */
function openChunks(opened: OpenedStreamHeader, body: Buffer): Buffer {
  const { chunkSize } = opened;
  const recordSize = chunkSize + TAG_BYTES;
  const nonce = Buffer.allocUnsafe(NONCE_BYTES);
  // As the stream reads it: every full record is a non-final chunk, the shorter remainder the final one.
  const full = Math.floor(body.length / recordSize);
  const finalBytes = body.length - full * recordSize;
  if (finalBytes < TAG_BYTES || full > STREAM_MAX_CHUNKS - 1) throw new DecryptionFailedError();
  const plaintext = Buffer.allocUnsafe(full * chunkSize + finalBytes - TAG_BYTES);
  try {
    for (let index = 0; index <= full; index++) {
      const final = index === full;
      const start = index * recordSize;
      const chunk = openStreamChunk(
        opened,
        nonce,
        index,
        final,
        body.subarray(start, final ? body.length : start + recordSize),
      );
      chunk.copy(plaintext, index * chunkSize);
      chunk.fill(0);
    }
    return plaintext;
  } catch (error) {
    plaintext.fill(0);
    throw error;
  }
}
