import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { deriveKey } from '../../src/crypto/derivedKey.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

function reference(
  ikm: Uint8Array,
  salt: Uint8Array,
  label: string,
  mode: number,
  keyId: Uint8Array,
): Buffer {
  const info = Buffer.concat([Buffer.from(label, 'ascii'), Buffer.of(0, mode), keyId]);
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

describe('deriveKey', () => {
  it('equals HKDF-SHA256 (node:crypto hkdfSync) for the key and the commitment', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 255 }),
        (dek, salt, keyId, mode) => {
          const derived = deriveKey(SecretBytes.copyOf(dek), Buffer.from(salt), keyId, mode);
          assert.deepEqual(derived.key, reference(dek, salt, 'keyledger-v1 key', mode, keyId));
          assert.deepEqual(derived.commitment, reference(dek, salt, 'keyledger-v1 commit', mode, keyId));
        },
      ),
      { numRuns: 300 },
    );
  });
});
