import { hkdfSync } from 'node:crypto';
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

function info(label: string, mode: number, keyId: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(label, 'ascii'), Buffer.of(0, mode), keyId]);
}

export function deriveKey(dek: SecretBytes, salt: Buffer, keyId: Uint8Array, mode: number): DerivedKey {
  const ikm = dek.expose();
  return {
    salt,
    key: Buffer.from(hkdfSync('sha256', ikm, salt, info('keyledger-v1 key', mode, keyId), 32)),
    commitment: Buffer.from(hkdfSync('sha256', ikm, salt, info('keyledger-v1 commit', mode, keyId), 32)),
  };
}

export function zeroDerived(derived: DerivedKey): void {
  derived.key.fill(0);
  derived.commitment.fill(0);
}
