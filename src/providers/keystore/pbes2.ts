import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { concat, type DerReader, encodeOid, integer, nullValue, octetString, sequence, TAG } from './der.js';
import { keystoreFormatError, keystorePasswordError } from './keystoreErrors.js';
import { OID } from './oids.js';
import { checkIterations } from './pkcs12Mac.js';

type Prf = 'sha1' | 'sha256';
type Cipher = 'aes-128-cbc' | 'aes-256-cbc';

const CIPHERS: Readonly<Record<Cipher, { readonly oid: string; readonly keyLength: number }>> = {
  'aes-128-cbc': { oid: OID.aes128Cbc, keyLength: 16 },
  'aes-256-cbc': { oid: OID.aes256Cbc, keyLength: 32 },
};
const AES_BLOCK = 16;

export interface Pbes2Params {
  readonly salt: Uint8Array;
  readonly iterations: number;
  readonly prf: Prf;
  readonly cipher: Cipher;
  readonly iv: Uint8Array;
}

function prfOf(oid: string): Prf | undefined {
  if (oid === OID.hmacWithSha1) return 'sha1';
  if (oid === OID.hmacWithSha256) return 'sha256';
  return undefined;
}

function cipherOf(oid: string): Cipher | undefined {
  if (oid === CIPHERS['aes-128-cbc'].oid) return 'aes-128-cbc';
  if (oid === CIPHERS['aes-256-cbc'].oid) return 'aes-256-cbc';
  return undefined;
}

/**
 * Reads an AlgorithmIdentifier that must be PBES2 (RFC 8018) with PBKDF2 and AES-CBC: what Java 12+
 * writes. The legacy PKCS#12 PBE schemes (3DES, RC2) are refused, naming their OID.
 */
export function parsePbes2AlgorithmIdentifier(algorithm: DerReader): Pbes2Params {
  const scheme = algorithm.oid();
  if (scheme !== OID.pbes2) throw keystoreFormatError('unsupported key encryption scheme', { oid: scheme });
  const params = algorithm.sequence();
  algorithm.end('PBES2 AlgorithmIdentifier');

  const kdf = params.sequence();
  const kdfOid = kdf.oid();
  if (kdfOid !== OID.pbkdf2) throw keystoreFormatError('unsupported PBES2 key derivation', { oid: kdfOid });
  const kdfParams = kdf.sequence();
  kdf.end('PBES2 key derivation AlgorithmIdentifier');
  if (kdfParams.peekTag() !== TAG.OCTET_STRING) {
    throw keystoreFormatError('PBKDF2 salt from another source is not supported');
  }
  const salt = kdfParams.octetString();
  const iterations = kdfParams.integer();
  checkIterations(iterations, 'PBKDF2');
  const keyLength = kdfParams.peekTag() === TAG.INTEGER ? kdfParams.integer() : undefined;
  // The PRF defaults to HMAC-SHA1 when absent (RFC 8018 appendix A.2).
  let prf: Prf = 'sha1';
  if (!kdfParams.done) {
    const prfAlgorithm = kdfParams.sequence();
    const prfOid = prfAlgorithm.oid();
    const known = prfOf(prfOid);
    if (known === undefined) throw keystoreFormatError('unsupported PBKDF2 PRF', { oid: prfOid });
    if (!prfAlgorithm.done) prfAlgorithm.null();
    prfAlgorithm.end('PBKDF2 PRF AlgorithmIdentifier');
    prf = known;
  }
  kdfParams.end('PBKDF2-params');

  const encryption = params.sequence();
  params.end('PBES2-params');
  const cipherOid = encryption.oid();
  const cipher = cipherOf(cipherOid);
  if (cipher === undefined) throw keystoreFormatError('unsupported PBES2 cipher', { oid: cipherOid });
  const iv = encryption.octetString();
  encryption.end('PBES2 encryption scheme AlgorithmIdentifier');
  if (iv.length !== AES_BLOCK) throw keystoreFormatError('AES-CBC IV must be 16 bytes');
  if (keyLength !== undefined && keyLength !== CIPHERS[cipher].keyLength) {
    throw keystoreFormatError('PBKDF2 key length does not match the cipher', { oid: cipherOid });
  }
  return { salt, iterations, prf, cipher, iv };
}

/**
 * Java derives PBES2 keys from the UTF-8 bytes of the password (PBKDF2KeyImpl), unlike the PKCS#12 MAC,
 * which uses BMPString. A padding failure is reported as a password problem: the caller has already
 * verified the store MAC, so it means this entry was protected with some other password.
 */
export function pbes2Decrypt(
  params: Pbes2Params,
  ciphertext: Uint8Array,
  password: string,
  alias: string,
): Uint8Array {
  if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK !== 0) {
    throw keystoreFormatError('encrypted key is not a whole number of AES blocks', { alias });
  }
  const key = deriveKey(params, password);
  const parts: Uint8Array[] = [];
  try {
    const decipher = createDecipheriv(params.cipher, key, params.iv);
    parts.push(decipher.update(ciphertext));
    try {
      parts.push(decipher.final());
    } catch {
      throw keystorePasswordError(
        `key entry '${alias}' does not decrypt with the keystore password (protected by a different password, or corrupted)`,
        { alias },
      );
    }
    return concat(parts);
  } finally {
    key.fill(0);
    for (const part of parts) part.fill(0);
  }
}

/** Encrypts as Java 17 does by default: PBKDF2-HMAC-SHA256, AES-256-CBC, 20-byte salt. */
export function pbes2Encrypt(
  plaintext: Uint8Array,
  password: string,
  iterations: number,
): { algorithmIdentifier: Uint8Array; ciphertext: Uint8Array } {
  const params: Pbes2Params = {
    salt: randomBytes(20),
    iterations,
    prf: 'sha256',
    cipher: 'aes-256-cbc',
    iv: randomBytes(AES_BLOCK),
  };
  const key = deriveKey(params, password);
  try {
    const cipher = createCipheriv(params.cipher, key, params.iv);
    const ciphertext = concat([cipher.update(plaintext), cipher.final()]);
    const algorithmIdentifier = sequence(
      encodeOid(OID.pbes2),
      sequence(
        sequence(
          encodeOid(OID.pbkdf2),
          sequence(
            octetString(params.salt),
            integer(iterations),
            integer(CIPHERS[params.cipher].keyLength),
            sequence(encodeOid(OID.hmacWithSha256), nullValue()),
          ),
        ),
        sequence(encodeOid(CIPHERS[params.cipher].oid), octetString(params.iv)),
      ),
    );
    return { algorithmIdentifier, ciphertext };
  } finally {
    key.fill(0);
  }
}

function deriveKey(params: Pbes2Params, password: string): Buffer {
  const passwordBytes = new TextEncoder().encode(password);
  try {
    return pbkdf2Sync(
      passwordBytes,
      params.salt,
      params.iterations,
      CIPHERS[params.cipher].keyLength,
      params.prf,
    );
  } finally {
    passwordBytes.fill(0);
  }
}
