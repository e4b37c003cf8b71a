import { KeyledgerError } from '../../domain/errors.js';
import type { SecretBytes } from '../../secrets/secretBytes.js';
import {
  bmpString,
  concat,
  encodeOid,
  explicit,
  header,
  integer,
  nullValue,
  octetString,
  sequence,
  set,
  TAG,
} from './der.js';
import { OID, secretKeyAlgorithmOid } from './oids.js';
import { pbes2Encrypt } from './pbes2.js';
import { encodeMacData, MAX_ITERATIONS } from './pkcs12Mac.js';

export interface Pkcs12SecretKeyInput {
  readonly alias: string;
  readonly key: SecretBytes;
  /** Java's algorithm name ('AES', 'HmacSHA256', …) or a dotted OID; defaults to 'AES'. */
  readonly algorithm?: string;
}

export interface Pkcs12WriteOptions {
  /** PBKDF2 and MAC iteration count; Java 17 uses 10000. */
  readonly iterations?: number;
}

const DEFAULT_ITERATIONS = 10_000;
const AES_KEY_LENGTHS = [16, 24, 32];

/**
 * Writes secret keys the way `keytool -genseckey -storetype PKCS12` does on Java 17: one Data
 * SafeContents of SecretBags, each key PKCS#8-wrapped and shrouded with PBES2 (PBKDF2-HMAC-SHA256,
 * AES-256-CBC), and an HMAC-SHA256 integrity MAC. Aliases are lower-cased as keytool would. The caller's
 * keys are left intact.
 */
export function writePkcs12SecretKeys(
  entries: readonly Pkcs12SecretKeyInput[],
  password: string,
  options: Pkcs12WriteOptions = {},
): Uint8Array {
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw invalid(`iterations must be an integer between 1 and ${MAX_ITERATIONS}`, { iterations });
  }
  const aliases = new Set<string>();
  const bags = entries.map((entry) => {
    const alias = entry.alias.toLowerCase();
    if (alias === '') throw invalid('keystore alias must not be empty');
    if (aliases.has(alias))
      throw invalid('duplicate keystore alias (aliases are case-insensitive)', { alias });
    aliases.add(alias);
    return secretBag(alias, entry, password, iterations);
  });

  const authSafe = sequence(contentInfoData(sequence(...bags)));
  return sequence(integer(3), contentInfoData(authSafe), encodeMacData(password, iterations, authSafe));
}

function contentInfoData(body: Uint8Array): Uint8Array {
  return sequence(encodeOid(OID.data), explicit(0, octetString(body)));
}

function secretBag(
  alias: string,
  entry: Pkcs12SecretKeyInput,
  password: string,
  iterations: number,
): Uint8Array {
  const algorithmName = entry.algorithm ?? 'AES';
  const algorithmOid = secretKeyAlgorithmOid(algorithmName);
  if (algorithmOid === undefined)
    throw invalid('unknown secret key algorithm', { alias, algorithm: algorithmName });
  if (entry.key.isZeroed) throw invalid('secret key was already zeroed', { alias });
  const key = entry.key.expose();
  if (key.length === 0) throw invalid('secret key is empty', { alias });
  if (algorithmOid === secretKeyAlgorithmOid('AES') && !AES_KEY_LENGTHS.includes(key.length)) {
    throw invalid('AES keys must be 16, 24 or 32 bytes', { alias, length: key.length });
  }

  // Assembled in one buffer so the single plaintext copy of the key can be zeroed after encryption.
  const prefix = concat([
    integer(0),
    sequence(encodeOid(algorithmOid), nullValue()),
    header(TAG.OCTET_STRING, key.length),
  ]);
  const pkcs8 = concat([header(TAG.SEQUENCE, prefix.length + key.length), prefix, key]);
  let shrouded: { algorithmIdentifier: Uint8Array; ciphertext: Uint8Array };
  try {
    shrouded = pbes2Encrypt(pkcs8, password, iterations);
  } finally {
    pkcs8.fill(0);
  }
  const encryptedPrivateKeyInfo = sequence(shrouded.algorithmIdentifier, octetString(shrouded.ciphertext));

  // Java stores the creation time in localKeyId ("Time <millis>") and shows it in `keytool -list`.
  const localKeyId = new TextEncoder().encode(`Time ${Date.now()}`);
  return sequence(
    encodeOid(OID.secretBag),
    explicit(
      0,
      sequence(encodeOid(OID.pkcs8ShroudedKeyBag), explicit(0, octetString(encryptedPrivateKeyInfo))),
    ),
    set(
      sequence(encodeOid(OID.friendlyName), set(bmpString(alias))),
      sequence(encodeOid(OID.localKeyId), set(octetString(localKeyId))),
    ),
  );
}

function invalid(message: string, details: Record<string, string | number> = {}): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, details);
}
