import { createHmac } from 'node:crypto';
import type { SecretBytes } from '../secrets/secretBytes.js';

/**
 * A key derived from a DEK for one salt, with its commitment. The encryption key is
 * HKDF-SHA256(ikm = DEK, salt, info = "keyledger-v1 key" ‖ mode ‖ key id, 32 bytes); the commitment
 * is the same with info "keyledger-v1 commit". The commitment goes in the header and is checked
 * before decrypting, so one ciphertext cannot be opened under two different DEKs (AES-GCM alone
 * is not key-committing).
 */
export interface DerivedKey {
  readonly salt: Buffer;
  readonly key: Buffer;
  readonly commitment: Buffer;
}

const KEY_LABEL = Buffer.from('keyledger-v1 key', 'ascii');
const COMMIT_LABEL = Buffer.from('keyledger-v1 commit', 'ascii');
const SHA256_BYTES = 32;
const FIRST_BLOCK = Buffer.of(1);

/**
 * RFC 5869 written out with HMAC-SHA256 rather than two `hkdfSync` calls: both outputs share one
 * extract (same DEK, same salt), and a 32-byte output is one expand block, so a derivation is three
 * HMACs instead of four plus the KeyObjects `hkdfSync` makes — it runs once per message and is most
 * of a small message's cost. test/unit/derivedKey.test.ts checks it against `hkdfSync`.
 */
export function deriveKey(dek: SecretBytes, salt: Buffer, keyId: Uint8Array, mode: number): DerivedKey {
  const prk = createHmac('sha256', salt.length === 0 ? Buffer.alloc(SHA256_BYTES) : salt)
    .update(dek.expose())
    .digest();
  try {
    const suffix = Buffer.of(0, mode);
    return {
      salt,
      key: expandOneBlock(prk, KEY_LABEL, suffix, keyId),
      commitment: expandOneBlock(prk, COMMIT_LABEL, suffix, keyId),
    };
  } finally {
    prk.fill(0);
  }
}

/** T(1) = HMAC(PRK, info ‖ 0x01): the first 32 bytes of HKDF-Expand(PRK, info). */
function expandOneBlock(prk: Buffer, label: Buffer, suffix: Buffer, keyId: Uint8Array): Buffer {
  return createHmac('sha256', prk).update(label).update(suffix).update(keyId).update(FIRST_BLOCK).digest();
}

export function zeroDerived(derived: DerivedKey): void {
  derived.key.fill(0);
  derived.commitment.fill(0);
}
