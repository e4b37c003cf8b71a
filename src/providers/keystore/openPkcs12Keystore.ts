import { SecretBytes } from '../../secrets/secretBytes.js';
import { DerError, DerReader } from './der.js';
import { keystoreFormatError } from './keystoreErrors.js';
import { KEYSTORE_LIMITS } from './keystoreLimits.js';
import { OID, secretKeyAlgorithmName } from './oids.js';
import { type Pbes2Params, parsePbes2AlgorithmIdentifier, pbes2Decrypt } from './pbes2.js';
import { parseMacData, verifyMac } from './pkcs12Mac.js';

export interface Pkcs12SecretKeyEntry {
  readonly alias: string;
  readonly key: SecretBytes;
  /** Java's name for the key algorithm (e.g. 'AES'), or the dotted OID when Java would print that. */
  readonly algorithm: string;
}

/** A secret-key entry whose structure has been checked but whose key is still encrypted. */
interface ShroudedEntry {
  readonly alias: string;
  readonly params: Pbes2Params;
  readonly ciphertext: Uint8Array;
}

/**
 * An opened keystore: MAC verified, every secret-key bag parsed, no key decrypted yet. Decryption costs
 * one PBKDF2 run per entry, so a process that needs two keys of a store of thousands pays for two.
 */
export class Pkcs12Keystore {
  readonly #entries: ReadonlyMap<string, ShroudedEntry>;

  constructor(entries: ReadonlyMap<string, ShroudedEntry>) {
    this.#entries = entries;
  }

  /** In file order. */
  get aliases(): readonly string[] {
    return [...this.#entries.keys()];
  }

  has(alias: string): boolean {
    return this.#entries.has(alias);
  }

  /** The decrypted entry, or undefined when the store has no secret key of that (lower-case) alias. */
  secretKey(alias: string, password: string): Pkcs12SecretKeyEntry | undefined {
    const entry = this.#entries.get(alias);
    if (entry === undefined) return undefined;
    const plaintext = pbes2Decrypt(entry.params, entry.ciphertext, password, alias);
    try {
      return parseSecretKeyInfo(plaintext, alias);
    } finally {
      plaintext.fill(0);
    }
  }
}

const PFX_VERSION = 3;

/**
 * Opens a PKCS#12 keystore as Java's keytool writes it. The size is checked first and the integrity MAC
 * before anything inside it is parsed, so a wrong password surfaces as ERR_KEYSTORE_PASSWORD and not as
 * whatever garbage the content would otherwise look like, and a hostile file costs at most one bounded
 * MAC computation (keystoreLimits.ts). Certificates and private keys are skipped.
 */
export function openPkcs12Keystore(data: Uint8Array, password: string): Pkcs12Keystore {
  if (data.length > KEYSTORE_LIMITS.fileBytes) throw tooLarge();
  try {
    return new Pkcs12Keystore(readStore(data, password));
  } catch (error) {
    if (error instanceof DerError) {
      throw keystoreFormatError(
        `keystore is not a valid PKCS#12 file: ${error.message}`,
        error.limit === undefined ? {} : { limit: error.limit },
        error,
      );
    }
    throw error;
  }
}

export function tooLarge(): Error {
  return keystoreFormatError(`keystore file is larger than ${KEYSTORE_LIMITS.fileBytes} bytes`, {
    limit: 'fileBytes',
  });
}

function readStore(data: Uint8Array, password: string): Map<string, ShroudedEntry> {
  const file = new DerReader(data);
  const pfx = file.sequence();
  file.end('keystore file');
  const version = pfx.integer();
  if (version !== PFX_VERSION) throw keystoreFormatError('unsupported PKCS#12 version', { version });
  const authSafe = dataContent(pfx.sequence(), 'authSafe');
  // Without a MAC nothing would tell a wrong password from a tampered file, or detect CBC bit-flipping
  // of the shrouded keys; Java-made stores always carry one.
  if (pfx.done)
    throw keystoreFormatError('keystore has no integrity MAC; unauthenticated keystores are refused');
  const mac = parseMacData(pfx.sequence());
  pfx.end('PFX');
  verifyMac(mac, password, authSafe);

  const entries = new Map<string, ShroudedEntry>();
  const counter = { bags: 0 };
  const safes = new DerReader(authSafe).sequence();
  while (!safes.done) {
    const contentInfo = safes.sequence();
    const contentType = contentInfo.oid();
    if (contentType === OID.data) {
      readSafeContents(dataContentBody(contentInfo, 'SafeContents'), entries, counter);
    } else if (contentType !== OID.encryptedData) {
      // Java writes secret keys only into Data, each key shrouded on its own; EncryptedData holds
      // the certificates, which this codec has no use for.
      throw keystoreFormatError('unsupported PKCS#12 content type', { oid: contentType });
    }
  }
  return entries;
}

/** ContentInfo ::= SEQUENCE { contentType OID (must be Data here), content [0] EXPLICIT OCTET STRING } */
function dataContent(contentInfo: DerReader, what: string): Uint8Array {
  const contentType = contentInfo.oid();
  if (contentType !== OID.data) {
    throw keystoreFormatError(
      `unsupported ${what} content type (only password integrity mode is supported)`,
      {
        oid: contentType,
      },
    );
  }
  return dataContentBody(contentInfo, what);
}

function dataContentBody(contentInfo: DerReader, what: string): Uint8Array {
  const wrapper = contentInfo.explicit(0);
  const body = wrapper.octetString();
  wrapper.end(what);
  contentInfo.end(`${what} ContentInfo`);
  return body;
}

/** SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF Attribute OPTIONAL } */
function readSafeContents(
  encoded: Uint8Array,
  entries: Map<string, ShroudedEntry>,
  counter: { bags: number },
): void {
  const bags = new DerReader(encoded).sequence();
  while (!bags.done) {
    counter.bags += 1;
    if (counter.bags > KEYSTORE_LIMITS.entries) {
      throw keystoreFormatError(`keystore has more than ${KEYSTORE_LIMITS.entries} entries`, {
        limit: 'entries',
      });
    }
    const bag = bags.sequence();
    const bagId = bag.oid();
    const value = bag.explicit(0);
    const attributes = bag.done ? undefined : bag.set();
    bag.end('SafeBag');
    if (bagId !== OID.secretBag) continue;

    const alias = friendlyName(attributes);
    if (entries.has(alias)) throw keystoreFormatError('duplicate alias in keystore', { alias });
    entries.set(alias, shroudedEntry(shroudedSecret(value, alias), alias));
  }
}

/** keytool lower-cases aliases when it loads a store, so this does too; an entry without one has no usable name. */
function friendlyName(attributes: DerReader | undefined): string {
  let alias: string | undefined;
  while (attributes && !attributes.done) {
    const attribute = attributes.sequence();
    const type = attribute.oid();
    const values = attribute.set();
    attribute.end('bag attribute');
    if (type !== OID.friendlyName) continue;
    if (alias !== undefined) throw keystoreFormatError('secret key bag has two friendlyName attributes');
    alias = values.bmpString();
    values.end('friendlyName attribute values');
  }
  if (alias === undefined || alias === '')
    throw keystoreFormatError('secret key bag has no friendlyName (alias)');
  return alias.toLowerCase();
}

/** SecretBag ::= SEQUENCE { secretTypeId OID, secretValue [0] EXPLICIT OCTET STRING (EncryptedPrivateKeyInfo) } */
function shroudedSecret(value: DerReader, alias: string): Uint8Array {
  const secretBag = value.sequence();
  value.end('secret bag value');
  const secretType = secretBag.oid();
  if (secretType !== OID.pkcs8ShroudedKeyBag) {
    throw keystoreFormatError('unsupported secret bag type', { oid: secretType, alias });
  }
  const wrapper = secretBag.explicit(0);
  const encoded = wrapper.octetString();
  wrapper.end('secret value');
  secretBag.end('SecretBag');
  return encoded;
}

/**
 * EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier, encryptedData OCTET STRING }.
 * Parsed (algorithms and iteration count checked) when the store is opened, decrypted only on demand.
 */
function shroudedEntry(encoded: Uint8Array, alias: string): ShroudedEntry {
  const info = new DerReader(encoded).sequence();
  const params = parsePbes2AlgorithmIdentifier(info.sequence());
  const ciphertext = info.octetString();
  info.end('EncryptedPrivateKeyInfo');
  return { alias, params, ciphertext };
}

/**
 * Java wraps a secret key like a PKCS#8 PrivateKeyInfo:
 * SEQUENCE { version INTEGER (0), algorithm AlgorithmIdentifier, key OCTET STRING }.
 * Parse errors are reported without detail, since the decrypted bytes are (or hold) key material.
 */
function parseSecretKeyInfo(plaintext: Uint8Array, alias: string): Pkcs12SecretKeyEntry {
  let oid: string;
  let keyBytes: Uint8Array;
  try {
    const file = new DerReader(plaintext);
    const info = file.sequence();
    file.end('secret key info');
    if (info.integer() !== 0) throw new DerError('unsupported version');
    const algorithm = info.sequence();
    oid = algorithm.oid();
    if (!algorithm.done) algorithm.null();
    algorithm.end('key AlgorithmIdentifier');
    keyBytes = info.octetString();
    info.end('secret key info');
    if (keyBytes.length === 0) throw new DerError('empty key');
  } catch (error) {
    if (!(error instanceof DerError)) throw error;
    throw keystoreFormatError(
      `decrypted key entry '${alias}' is not a valid secret key structure (or it was protected with a different password)`,
      { alias },
    );
  }
  return { alias, key: SecretBytes.copyOf(keyBytes), algorithm: secretKeyAlgorithmName(oid) };
}
