import { createDecipheriv, timingSafeEqual } from 'node:crypto';
import { DecryptionFailedError } from './decryptionFailedError.js';
import { type DerivedKey, deriveKey, zeroDerived } from './derivedKey.js';
import {
  COMMITMENT_BYTES,
  hasPrefix,
  KEY_ID_BYTES,
  MODE_STREAM,
  NONCE_BYTES,
  OFFSET_KEY_ID,
  OFFSET_SALT,
  SALT_BYTES,
  STREAM_HEADER_BYTES,
  STREAM_MAX_CHUNK_BYTES,
  STREAM_MAX_CHUNKS,
  STREAM_MIN_CHUNK_BYTES,
  STREAM_NONCE_PREFIX_BYTES,
  STREAM_OFFSET_CHUNK_SIZE,
  STREAM_OFFSET_COMMITMENT,
  STREAM_OFFSET_NONCE_PREFIX,
  TAG_BYTES,
  writeStreamNonce,
} from './envelopeFormat.js';
import { type DecryptionKeyInfo, inExpectedScope, keyInfoOf, type ScopeCheck } from './expectedScope.js';
import { type KeySource, withKeyForDecrypt } from './keySource.js';

/** What opening a whole stream-format ciphertext answers. */
export interface OpenedBuffer {
  readonly plaintext: Buffer;
  readonly keyInfo: DecryptionKeyInfo;
}

/** Thrown by the authorize hook: reported as is, not as a decryption failure. */
class Refusal {
  constructor(readonly error: unknown) {}
}

/**
 * A stream-format ciphertext already in memory, opened whole (EnvelopeStreams.decryptBuffer): the
 * same checks as DecryptStream in the same order — prefix, mode and chunk size; the key by the
 * header's id (ACTIVE or INACTIVE, still held); the expected scope; the caller's authorize hook
 * before the key is used; the commitment (constant time); then every chunk's tag, records of C + 16
 * bytes, the shorter remainder the final chunk — without the Duplex, its buffering and its events.
 * The plaintext is released only once every tag verified (the stream releases chunk by chunk).
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
    return await open(keys, data, callerAad, expected, authorize);
  } catch (error) {
    if (error instanceof Refusal) throw error.error;
    throw new DecryptionFailedError();
  }
}

async function open(
  keys: KeySource,
  data: Buffer,
  callerAad: Buffer,
  expected: ScopeCheck | null,
  authorize: ((custodian: string) => void) | undefined,
): Promise<OpenedBuffer> {
  // The smallest stream is a header and a lone final tag.
  if (data.length < STREAM_HEADER_BYTES + TAG_BYTES || !hasPrefix(data, MODE_STREAM)) {
    throw new DecryptionFailedError();
  }
  // A copy: the caller's buffer may change while the key lookup awaits.
  const header = Buffer.from(data.subarray(0, STREAM_HEADER_BYTES));
  const chunkSize = header.readUInt32BE(STREAM_OFFSET_CHUNK_SIZE);
  if (chunkSize < STREAM_MIN_CHUNK_BYTES || chunkSize > STREAM_MAX_CHUNK_BYTES) {
    throw new DecryptionFailedError();
  }
  const keyId = header.subarray(OFFSET_KEY_ID, OFFSET_KEY_ID + KEY_ID_BYTES);
  return withKeyForDecrypt(keys, keyId.toString('hex'), (key) => {
    if (key === null || !inExpectedScope(key, expected)) throw new DecryptionFailedError();
    if (authorize !== undefined) {
      try {
        authorize(key.scope.custodian);
      } catch (error) {
        throw new Refusal(error);
      }
    }
    // The DEK is used in the turn it is found held (it cannot leave L1 mid-way), and only K is kept.
    const salt = header.subarray(OFFSET_SALT, OFFSET_SALT + SALT_BYTES);
    const derived = deriveKey(key.key, salt, keyId, MODE_STREAM);
    try {
      const commitment = header.subarray(
        STREAM_OFFSET_COMMITMENT,
        STREAM_OFFSET_COMMITMENT + COMMITMENT_BYTES,
      );
      if (!timingSafeEqual(commitment, derived.commitment)) throw new DecryptionFailedError();
      const aad = callerAad.length === 0 ? header : Buffer.concat([header, callerAad]);
      const plaintext = openChunks(derived, header, aad, data.subarray(STREAM_HEADER_BYTES), chunkSize);
      return { plaintext, keyInfo: keyInfoOf(key) };
    } finally {
      zeroDerived(derived);
    }
  });
}

/** Every chunk opened in order; the plaintexts joined once every tag verified (zeroed otherwise). */
function openChunks(
  derived: DerivedKey,
  header: Buffer,
  aad: Buffer,
  body: Buffer,
  chunkSize: number,
): Buffer {
  const recordSize = chunkSize + TAG_BYTES;
  const prefix = header.subarray(
    STREAM_OFFSET_NONCE_PREFIX,
    STREAM_OFFSET_NONCE_PREFIX + STREAM_NONCE_PREFIX_BYTES,
  );
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
      const record = body.subarray(start, final ? body.length : start + recordSize);
      writeStreamNonce(nonce, prefix, index, final);
      const decipher = createDecipheriv('aes-256-gcm', derived.key, nonce);
      decipher.setAAD(aad);
      decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
      const opened = decipher.update(record.subarray(0, record.length - TAG_BYTES));
      opened.copy(plaintext, index * chunkSize);
      opened.fill(0);
      decipher.final();
    }
    return plaintext;
  } catch (error) {
    plaintext.fill(0);
    throw error;
  }
}
