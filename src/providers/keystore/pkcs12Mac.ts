import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type DerReader, encodeOid, integer, nullValue, octetString, sequence, TAG } from './der.js';
import { keystoreFormatError, keystorePasswordError } from './keystoreErrors.js';
import { KEYSTORE_LIMITS } from './keystoreLimits.js';
import { OID } from './oids.js';
import { PKCS12_MAC_KEY_ID, type Pkcs12Hash, pkcs12Kdf, pkcs12PasswordBytes } from './pkcs12Kdf.js';

/** The ceiling on PBKDF2 and MAC iteration counts, for reading and writing alike (see keystoreLimits.ts). */
export const MAX_ITERATIONS = KEYSTORE_LIMITS.iterations;

const MAC_HASHES: Readonly<Record<Pkcs12Hash, { readonly oid: string; readonly size: number }>> = {
  sha1: { oid: OID.sha1, size: 20 },
  sha256: { oid: OID.sha256, size: 32 },
};

function macHashOf(oid: string): Pkcs12Hash | undefined {
  if (oid === MAC_HASHES.sha1.oid) return 'sha1';
  if (oid === MAC_HASHES.sha256.oid) return 'sha256';
  return undefined;
}

export interface MacData {
  readonly hash: Pkcs12Hash;
  readonly digest: Uint8Array;
  readonly salt: Uint8Array;
  readonly iterations: number;
}

/** MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 } */
export function parseMacData(reader: DerReader): MacData {
  const digestInfo = reader.sequence();
  const algorithm = digestInfo.sequence();
  const oid = algorithm.oid();
  const hash = macHashOf(oid);
  if (hash === undefined) throw keystoreFormatError('unsupported keystore MAC digest algorithm', { oid });
  if (!algorithm.done) algorithm.null();
  algorithm.end('MAC AlgorithmIdentifier');
  const digest = digestInfo.octetString();
  digestInfo.end('MAC DigestInfo');
  if (digest.length !== MAC_HASHES[hash].size)
    throw keystoreFormatError('keystore MAC has the wrong length', { oid });
  const salt = reader.octetString();
  const iterations = reader.peekTag() === TAG.INTEGER ? reader.integer() : 1;
  reader.end('MacData');
  checkIterations(iterations, 'MAC');
  return { hash, digest, salt, iterations };
}

/** A mismatch means a wrong password or a modified file; the two cannot be told apart, and the message says so. */
export function verifyMac(mac: MacData, password: string, authSafe: Uint8Array): void {
  const expected = computeMac(mac.hash, password, mac.salt, mac.iterations, authSafe);
  if (!timingSafeEqual(expected, mac.digest)) {
    throw keystorePasswordError(
      'keystore integrity check failed: the password is wrong, or the file was modified or corrupted',
    );
  }
}

export function encodeMacData(password: string, iterations: number, authSafe: Uint8Array): Uint8Array {
  const salt = randomBytes(20);
  const digest = computeMac('sha256', password, salt, iterations, authSafe);
  return sequence(
    sequence(sequence(encodeOid(OID.sha256), nullValue()), octetString(digest)),
    octetString(salt),
    integer(iterations),
  );
}

export function checkIterations(iterations: number, what: string): void {
  if (iterations < 1) {
    throw keystoreFormatError(`${what} iteration count out of the supported range`, { iterations });
  }
  if (iterations > MAX_ITERATIONS) {
    throw keystoreFormatError(`${what} iteration count above the ceiling of ${MAX_ITERATIONS}`, {
      iterations,
      limit: 'iterations',
    });
  }
}

function computeMac(
  hash: Pkcs12Hash,
  password: string,
  salt: Uint8Array,
  iterations: number,
  data: Uint8Array,
): Buffer {
  const passwordBytes = pkcs12PasswordBytes(password);
  const key = pkcs12Kdf(hash, passwordBytes, salt, iterations, PKCS12_MAC_KEY_ID, MAC_HASHES[hash].size);
  passwordBytes.fill(0);
  try {
    return createHmac(hash, key).update(data).digest();
  } finally {
    key.fill(0);
  }
}
