import { createDecipheriv, timingSafeEqual } from 'node:crypto';
import { DecryptionFailedError } from './decryptionFailedError.js';
import { type DerivedKey, deriveKey, zeroDerived } from './derivedKey.js';
import {
  COMMITMENT_BYTES,
  hasPrefix,
  KEY_ID_BYTES,
  MODE_STREAM,
  OFFSET_KEY_ID,
  OFFSET_SALT,
  SALT_BYTES,
  STREAM_MAX_CHUNK_BYTES,
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

/**
 * The checks every stream-format decryption makes, in one place for its two readers (the
 * DecryptStream Duplex and the one-buffer EnvelopeStreams.decryptBuffer), so they cannot drift:
 * the header (prefix, mode, chunk size), the key by the header's id (ACTIVE or INACTIVE, still
 * held), the expected scope, the caller's authorize hook before the key is used, the key
 * commitment in constant time; and one chunk's tag. Every failure is a DecryptionFailedError;
 * what the authorize hook throws comes out as an AuthorizeRefusal, for the reader to report as is.
 */

/** A header that opened: the derived key K (the caller's to zero) and what each chunk needs. */
export interface OpenedStreamHeader {
  readonly derived: DerivedKey;
  readonly chunkSize: number;
  readonly prefix: Buffer;
  /** The header ‖ the caller's AAD: every chunk's AAD. */
  readonly aad: Buffer;
  readonly keyInfo: DecryptionKeyInfo;
}

/** What the authorize hook threw, carried past the one-error rule to be reported as is. */
export class AuthorizeRefusal {
  constructor(readonly error: unknown) {}
}

/**
 * Opens a complete 96-byte header (the caller's own copy: it must not change while the key lookup
 * awaits). `abandoned`: the reader went away during the lookup (nothing is derived then).
 */
export async function openStreamHeader(
  keys: KeySource,
  header: Buffer,
  callerAad: Buffer,
  expected: ScopeCheck | null,
  authorize: ((custodian: string) => void) | undefined,
  abandoned: () => boolean = () => false,
): Promise<OpenedStreamHeader> {
  if (!hasPrefix(header, MODE_STREAM)) throw new DecryptionFailedError();
  const chunkSize = header.readUInt32BE(STREAM_OFFSET_CHUNK_SIZE);
  if (chunkSize < STREAM_MIN_CHUNK_BYTES || chunkSize > STREAM_MAX_CHUNK_BYTES) {
    throw new DecryptionFailedError();
  }
  const keyId = header.subarray(OFFSET_KEY_ID, OFFSET_KEY_ID + KEY_ID_BYTES);
  return withKeyForDecrypt(keys, keyId.toString('hex'), (key) => {
    if (key === null || abandoned()) throw new DecryptionFailedError();
    if (!inExpectedScope(key, expected)) throw new DecryptionFailedError();
    if (authorize !== undefined) {
      try {
        authorize(key.scope.custodian);
      } catch (error) {
        throw new AuthorizeRefusal(error);
      }
    }
    // The DEK is used in the turn it is found held (it cannot leave L1 mid-way), and only K is kept.
    const salt = Buffer.from(header.subarray(OFFSET_SALT, OFFSET_SALT + SALT_BYTES));
    const derived = deriveKey(key.key, salt, Buffer.from(keyId), MODE_STREAM);
    const commitment = header.subarray(STREAM_OFFSET_COMMITMENT, STREAM_OFFSET_COMMITMENT + COMMITMENT_BYTES);
    if (!timingSafeEqual(commitment, derived.commitment)) {
      zeroDerived(derived);
      throw new DecryptionFailedError();
    }
    return {
      derived,
      chunkSize,
      prefix: Buffer.from(
        header.subarray(STREAM_OFFSET_NONCE_PREFIX, STREAM_OFFSET_NONCE_PREFIX + STREAM_NONCE_PREFIX_BYTES),
      ),
      aad: callerAad.length === 0 ? header : Buffer.concat([header, callerAad]),
      keyInfo: keyInfoOf(key),
    };
  });
}

/**
 * Chunk `index` (`record`: its ciphertext ‖ tag) opened: its plaintext once the tag verified, else
 * DecryptionFailedError with the unverified bytes zeroed. `nonce` is the caller's 12-byte scratch.
 */
export function openStreamChunk(
  opened: OpenedStreamHeader,
  nonce: Buffer,
  index: number,
  final: boolean,
  record: Buffer,
): Buffer {
  writeStreamNonce(nonce, opened.prefix, index, final);
  const decipher = createDecipheriv('aes-256-gcm', opened.derived.key, nonce);
  decipher.setAAD(opened.aad);
  decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
  const body = decipher.update(record.subarray(0, record.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    body.fill(0);
    throw new DecryptionFailedError();
  }
  return body;
}
