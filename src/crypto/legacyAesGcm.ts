import { createDecipheriv } from 'node:crypto';
import type { SecretBytes } from '../secrets/secretBytes.js';
import { DecryptionFailedError } from './decryptionFailedError.js';

/**
 * The legacy layouts `keyledger reencrypt --legacy` reads: data encrypted before the ledger by
 * hand-rolled code. One so far, the most common: AES-256-GCM as `nonce(12) ‖ ciphertext ‖ tag(16)`,
 * with optional associated data (docs/migration.md).
 */
export const LEGACY_ALGORITHMS = ['aes-256-gcm'] as const;
export type LegacyAlgorithm = (typeof LEGACY_ALGORITHMS)[number];

export const LEGACY_NONCE_BYTES = 12;
export const LEGACY_TAG_BYTES = 16;
const KEY_BYTES = 32;

/**
 * Decrypts one legacy AES-256-GCM record. GCM has one tag, at the end: nothing is released before
 * the whole record authenticated, so the caller hands over the whole record. Every failure — too
 * short, wrong key, wrong AAD, a flipped bit — is the one DecryptionFailedError, as for envelopes.
 */
export function decryptLegacyAesGcm(key: SecretBytes, record: Uint8Array, aad?: Uint8Array): Buffer {
  if (key.length !== KEY_BYTES) throw new DecryptionFailedError();
  if (record.length < LEGACY_NONCE_BYTES + LEGACY_TAG_BYTES) throw new DecryptionFailedError();
  const bytes = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  const nonce = bytes.subarray(0, LEGACY_NONCE_BYTES);
  const tag = bytes.subarray(bytes.length - LEGACY_TAG_BYTES);
  const body = bytes.subarray(LEGACY_NONCE_BYTES, bytes.length - LEGACY_TAG_BYTES);
  let opened: Buffer | null = null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.expose(), nonce, {
      authTagLength: LEGACY_TAG_BYTES,
    });
    decipher.setAuthTag(tag);
    if (aad !== undefined) decipher.setAAD(aad);
    opened = decipher.update(body);
    decipher.final();
    return opened;
  } catch {
    // Plaintext of a record that did not authenticate is never released, nor kept.
    opened?.fill(0);
    // No cause: which check failed is nobody's business (DecryptionFailedError says why).
    throw new DecryptionFailedError();
  }
}
