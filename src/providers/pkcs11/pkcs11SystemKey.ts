import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { constantTimeEqualStrings } from '../../crypto/constantTime.js';
import { DEK_WRAP_LABEL, type DekBinding, dekWrapAad, unwrapFailed } from '../../crypto/dekWrap.js';
import { keyChecksum } from '../../crypto/keyChecksum.js';
import type { SystemKeyHandle } from '../../crypto/systemKeyHandle.js';
import { STK_IDENTITY_LABEL } from '../../crypto/systemKeyIdentity.js';
import { KeyledgerError } from '../../domain/errors.js';
import type { SecretBytes } from '../../secrets/secretBytes.js';
import type { Pkcs11Token } from './pkcs11Token.js';

/**
 * Version 3 of the wrapped-DEK layout (docs/formats.md): the same bytes as version 2 (version ‖
 * nonce ‖ ciphertext ‖ tag) and the same AAD, but the AES-GCM key is the STK object itself, since
 * a token cannot derive the HKDF subkey the software wrap uses. The STK object is used for nothing
 * else (its MAC key is a separate object), which is what the subkey achieves in software.
 */
export const TOKEN_WRAP_VERSION = 3;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const DEK_BYTES = 32;
const WRAPPED_BYTES = 1 + NONCE_BYTES + DEK_BYTES + TAG_BYTES;

/** The two key objects of one system key: AES-256 for wrapping, generic secret for HMAC. */
export interface Pkcs11KeyLabels {
  readonly wrap: string;
  readonly mac: string;
}

/**
 * A system key that lives in the token: GCM wrap and unwrap and HMAC-SHA256 run there, and only
 * wrapped DEKs and MACs come out. Its identity is computed in the token too, as the first 8 bytes
 * of the MAC key's HMAC of "keyledger-stk-identity-v2" (a software STK HMACs the same label under
 * its own bytes), so nothing about the key bytes is needed outside.
 */
export function pkcs11SystemKey(
  token: Pkcs11Token,
  metadata: string,
  labels: Pkcs11KeyLabels,
): SystemKeyHandle {
  const macInput = (tag: number, label: string, message: Uint8Array): Buffer => {
    const labelBytes = Buffer.from(label, 'utf8');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(labelBytes.length);
    // A leading tag byte keeps identity inputs (0) and MAC inputs (1) apart.
    return Buffer.concat([Buffer.of(tag), length, labelBytes, message]);
  };
  const hmac = (input: Buffer): Buffer => {
    const key = requireKey(token, labels.mac);
    return token.use(
      'C_Sign',
      (api, session) => api.sign(session, { mechanism: pkcs11js.CKM_SHA256_HMAC }, key, input, 32),
      (rv, error) => notPermitted(token, rv, labels.mac, 'CKA_SIGN', error),
    );
  };
  const current = hmac(macInput(0, STK_IDENTITY_LABEL, Buffer.alloc(0)))
    .subarray(0, 8)
    .toString('hex');
  const handle = (identity: string): SystemKeyHandle => ({
    identity,
    metadata,
    identities: [current],
    names: (recorded) => recorded === current,
    bind: (recorded) => (recorded === current ? handle(recorded) : null),
    wrap: (dek, binding) => wrapInToken(token, labels.wrap, dek, { ...binding, stkIdentity: identity }),
    unwrap: (wrapped, binding, expectedChecksum) =>
      unwrapInToken(token, labels.wrap, wrapped, { ...binding, stkIdentity: identity }, expectedChecksum),
    mac: (label, message) => {
      if (label.length === 0) throw new TypeError('a MAC label must not be empty');
      if (label === DEK_WRAP_LABEL) throw new TypeError('the DEK wrapping label is not a MAC label');
      return hmac(macInput(1, label, message));
    },
    // The key stays in the token: there are no bytes here to zero.
    dispose: () => {},
  });
  return handle(current);
}

function requireKey(token: Pkcs11Token, label: string): Buffer {
  const key = token.findKey(label);
  if (key === null) {
    throw new KeyledgerError(
      'ERR_PKCS11_KEY_NOT_FOUND',
      `token ${token.tokenLabel} has no key labelled ${label}`,
      {
        tokenLabel: token.tokenLabel,
        label,
      },
    );
  }
  return key;
}

function notPermitted(
  token: Pkcs11Token,
  rv: number,
  label: string,
  attribute: string,
  cause: unknown,
): KeyledgerError | null {
  if (rv !== pkcs11js.CKR_KEY_FUNCTION_NOT_PERMITTED && rv !== pkcs11js.CKR_KEY_TYPE_INCONSISTENT)
    return null;
  return new KeyledgerError(
    'ERR_PKCS11_KEY_NOT_PERMITTED',
    `key ${label} in token ${token.tokenLabel} does not allow this use (${attribute})`,
    { tokenLabel: token.tokenLabel, label, attribute },
    { cause },
  );
}

function gcm(nonce: Buffer, binding: DekBinding): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_GCM,
      iv: nonce,
      ivBits: NONCE_BYTES * 8,
      aad: dekWrapAad(binding, TOKEN_WRAP_VERSION),
      tagBits: TAG_BYTES * 8,
    } as pkcs11js.GcmParams,
  };
}

/**
 * Each of wrap and unwrap is one message to the module's worker (init and the single-part call run
 * there); the DEK crosses in shared memory that both threads zero after the call (pkcs11Worker.ts).
 */
function wrapInToken(token: Pkcs11Token, label: string, dek: SecretBytes, binding: DekBinding): string {
  if (dek.length !== DEK_BYTES) throw new TypeError(`a DEK must be ${DEK_BYTES} bytes`);
  const key = requireKey(token, label);
  const nonce = randomBytes(NONCE_BYTES);
  const body = token.use(
    'C_Encrypt',
    (api, session) =>
      api.encryptSecret(session, gcm(nonce, binding), key, dek.expose(), DEK_BYTES + TAG_BYTES),
    (rv, error) => notPermitted(token, rv, label, 'CKA_ENCRYPT', error),
  );
  return Buffer.concat([Buffer.of(TOKEN_WRAP_VERSION), nonce, body]).toString('base64');
}

function unwrapInToken(
  token: Pkcs11Token,
  label: string,
  wrapped: string,
  binding: DekBinding,
  expectedChecksum: string | null,
): SecretBytes {
  const fail = (cause?: unknown): never => {
    throw unwrapFailed(binding, cause);
  };
  const bytes = Buffer.from(wrapped, 'base64');
  if (bytes.length !== WRAPPED_BYTES || bytes[0] !== TOKEN_WRAP_VERSION) return fail();
  const key = requireKey(token, label);
  const nonce = Buffer.from(bytes.subarray(1, 1 + NONCE_BYTES));
  const dek = token.use(
    'C_Decrypt',
    (api, session) =>
      api.decryptSecret(
        session,
        gcm(nonce, binding),
        key,
        bytes.subarray(1 + NONCE_BYTES),
        DEK_BYTES + TAG_BYTES,
      ),
    (rv, error) =>
      rv === pkcs11js.CKR_ENCRYPTED_DATA_INVALID ||
      rv === pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE ||
      // SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR; a lost device or session has
      // its own codes (handled before this), so a general error of C_Decrypt itself (not of
      // C_DecryptInit) is a tag.
      (rv === pkcs11js.CKR_GENERAL_ERROR && (error as { method?: string }).method === 'C_Decrypt')
        ? // A wrong tag: wrong STK, wrong binding or tampered, all one failure.
          new KeyledgerError(
            'ERR_KEY_UNWRAP_FAILED',
            'wrapped key material does not verify under its system key',
            { metadataHash: binding.metadataHash, stkIdentity: binding.stkIdentity },
            { cause: error },
          )
        : notPermitted(token, rv, label, 'CKA_DECRYPT', error),
  );
  if (dek.length !== DEK_BYTES) {
    dek.zero();
    return fail();
  }
  if (expectedChecksum !== null && !constantTimeEqualStrings(keyChecksum(dek), expectedChecksum)) {
    dek.zero();
    return fail();
  }
  return dek;
}
