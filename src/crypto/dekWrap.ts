import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { KeyledgerError } from '../domain/errors.js';
import { type Custodian, custodianBytes, type MetadataHash, type Namespace } from '../domain/identities.js';
import { SecretBytes } from '../secrets/secretBytes.js';
import { constantTimeEqualStrings } from './constantTime.js';
import { keyChecksum } from './keyChecksum.js';

/** What a wrapped DEK is bound to: unwrapping it as anything else fails authentication. */
export interface DekBinding {
  readonly custodian: Custodian;
  readonly namespace: Namespace;
  readonly metadataHash: MetadataHash;
  readonly stkIdentity: string;
}

/** Version 1: the STK itself was the AES key. Still unwrapped, never written. */
const VERSION_STK_KEYED = 1;
/** Version 2: the AES key is derived from the STK for wrapping alone (DEK_WRAP_LABEL). */
const VERSION = 2;
/**
 * HKDF info of the wrapping key. The STK also keys checkpoint MACs (under their own labels), so no
 * key is used for two purposes: a MAC oracle over the STK gives nothing about the wrapping key.
 */
export const DEK_WRAP_LABEL = 'keyledger dek wrap v2';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const DEK_BYTES = 32;
const WRAPPED_BYTES = 1 + NONCE_BYTES + DEK_BYTES + TAG_BYTES;

/**
 * The AAD of a wrap of `version`: the scope, the key's metadata hash and the STK identity, each
 * length-prefixed. Exported for wraps made elsewhere (inside an HSM, src/providers/pkcs11), which
 * must bind exactly the same.
 */
export function dekWrapAad(binding: DekBinding, version: number): Buffer {
  const parts = [
    custodianBytes(binding.custodian),
    Buffer.from(binding.namespace, 'utf8'),
    Buffer.from(binding.metadataHash, 'ascii'),
    Buffer.from(binding.stkIdentity, 'ascii'),
  ];
  const chunks: Buffer[] = [Buffer.from(`keyledger-dek-v${version}\0`, 'ascii')];
  for (const part of parts) {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(part.length);
    chunks.push(length, part);
  }
  return Buffer.concat(chunks);
}

/** The AES key of a wrap of `version`: the STK itself (1) or HKDF(STK, DEK_WRAP_LABEL) (2). */
function wrappingKey(stk: SecretBytes, version: number): Buffer {
  if (version === VERSION_STK_KEYED) return Buffer.from(stk.expose());
  return Buffer.from(
    hkdfSync('sha256', stk.expose(), Buffer.alloc(0), Buffer.from(DEK_WRAP_LABEL, 'utf8'), 32),
  );
}

/**
 * Wraps a 256-bit DEK under the system key with AES-256-GCM, keyed by HKDF(STK, "keyledger dek
 * wrap v2"): version ‖ nonce ‖ ciphertext ‖ tag, base64. The scope, the key's metadata hash and
 * the STK identity are the AAD, so wrapped material cannot be moved to another key or scope.
 * docs/formats.md has the exact layout.
 */
export function wrapDek(stk: SecretBytes, dek: SecretBytes, binding: DekBinding): string {
  if (dek.length !== DEK_BYTES) throw new TypeError(`a DEK must be ${DEK_BYTES} bytes`);
  if (stk.length !== 32) throw new TypeError('the system key must be 32 bytes');
  const nonce = randomBytes(NONCE_BYTES);
  const key = wrappingKey(stk, VERSION);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(dekWrapAad(binding, VERSION));
    const body = Buffer.concat([cipher.update(dek.expose()), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), nonce, body, cipher.getAuthTag()]).toString('base64');
  } finally {
    key.fill(0);
  }
}

/**
 * Unwraps and verifies: the GCM tag (right STK, right binding, untampered) and, when given, the
 * recorded checksum of the key. Every failure is the same ERR_KEY_UNWRAP_FAILED. A version-1 wrap
 * is bound to `legacyIdentity` (the STK's checksum, what ledgers recorded then) when it is given.
 */
/** The one error of every wrapped DEK that does not verify (software or in a token). */
export function unwrapFailed(binding: DekBinding, cause?: unknown): KeyledgerError {
  return new KeyledgerError(
    'ERR_KEY_UNWRAP_FAILED',
    'wrapped key material does not verify under its system key',
    { metadataHash: binding.metadataHash, stkIdentity: binding.stkIdentity },
    { cause },
  );
}

export function unwrapDek(
  stk: SecretBytes,
  wrapped: string,
  binding: DekBinding,
  expectedChecksum: string | null,
  legacyIdentity?: string,
): SecretBytes {
  const fail = (cause?: unknown): never => {
    throw unwrapFailed(binding, cause);
  };
  const bytes = Buffer.from(wrapped, 'base64');
  const version = bytes[0];
  if (bytes.length !== WRAPPED_BYTES || (version !== VERSION && version !== VERSION_STK_KEYED)) return fail();
  const bound =
    version === VERSION_STK_KEYED && legacyIdentity !== undefined
      ? { ...binding, stkIdentity: legacyIdentity }
      : binding;
  const nonce = bytes.subarray(1, 1 + NONCE_BYTES);
  const body = bytes.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + DEK_BYTES);
  const tag = bytes.subarray(WRAPPED_BYTES - TAG_BYTES);
  let dek: SecretBytes;
  const key = wrappingKey(stk, version);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(dekWrapAad(bound, version));
    decipher.setAuthTag(tag);
    // GCM emits the whole plaintext from update() and nothing from final(), so no copy is left over.
    const plain = decipher.update(body);
    decipher.final();
    dek = SecretBytes.adopt(plain);
  } catch (error) {
    return fail(error);
  } finally {
    key.fill(0);
  }
  if (expectedChecksum !== null && !constantTimeEqualStrings(keyChecksum(dek), expectedChecksum)) {
    dek.zero();
    return fail();
  }
  return dek;
}
