import { KeyledgerError } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A custodian in canonical base64 (standard alphabet, padded); 1..255 bytes decoded. */
export type Custodian = Brand<string, 'Custodian'>;
/** A namespace: a UTF-8 string of 1..255 bytes. */
export type Namespace = Brand<string, 'Namespace'>;
/** Names a key within its scope: base64url (no padding) of SHA-256 over the key's metadata. */
export type MetadataHash = Brand<string, 'MetadataHash'>;
/** Names a key across the ledger: 32 lowercase hex characters (see docs/formats.md). */
export type KeyId = Brand<string, 'KeyId'>;

export interface KeyScope {
  readonly custodian: Custodian;
  readonly namespace: Namespace;
}

export const MAX_CUSTODIAN_BYTES = 255;
export const MAX_NAMESPACE_BYTES = 255;
export const GLOBAL_CUSTODIAN = Buffer.from('*').toString('base64') as Custodian;
export const GLOBAL_NAMESPACE = '*' as Namespace;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Custodians already parsed, input → canonical form. Every scope event of a replay carries its
 * custodian, and the parse (a base64 round trip) is the dearest of the identity checks while a
 * ledger holds few distinct custodians. Only successful parses are kept; the memo is cleared when
 * full, so a ledger with more custodians than that only costs the parse again.
 */
const parsedCustodians = new Map<string, Custodian>();
const MAX_PARSED_CUSTODIANS = 4096;

/** Parses a custodian given in base64; `*` is accepted as the global custodian. */
export function parseCustodian(input: string): Custodian {
  const known = parsedCustodians.get(input);
  if (known !== undefined) return known;
  const custodian = parseCustodianUncached(input);
  if (parsedCustodians.size >= MAX_PARSED_CUSTODIANS) parsedCustodians.clear();
  parsedCustodians.set(input, custodian);
  return custodian;
}

/**
 * True when `input` is a custodian in its canonical form: parseCustodian accepts it and answers it
 * unchanged (a non-canonical spelling such as `*`, or base64 with stray trailing bits, is not).
 */
export function isCanonicalCustodian(input: string): boolean {
  const known = parsedCustodians.get(input);
  if (known !== undefined) return known === input;
  try {
    return parseCustodian(input) === input;
  } catch {
    return false;
  }
}

function parseCustodianUncached(input: string): Custodian {
  if (input === '*') return GLOBAL_CUSTODIAN;
  if (input.length === 0) {
    throw new KeyledgerError('ERR_INVALID_CUSTODIAN', 'custodian is empty', { custodian: input });
  }
  if (!BASE64.test(input)) {
    throw new KeyledgerError('ERR_INVALID_CUSTODIAN', 'custodian is not valid base64', { custodian: input });
  }
  return custodianFromBytes(Buffer.from(input, 'base64'));
}

export function custodianFromBytes(bytes: Uint8Array): Custodian {
  if (bytes.length === 0) {
    throw new KeyledgerError('ERR_INVALID_CUSTODIAN', 'custodian is empty', { bytes: 0 });
  }
  if (bytes.length > MAX_CUSTODIAN_BYTES) {
    throw new KeyledgerError(
      'ERR_INVALID_CUSTODIAN',
      `custodian is ${bytes.length} bytes, at most ${MAX_CUSTODIAN_BYTES} allowed`,
      { bytes: bytes.length },
    );
  }
  return Buffer.from(bytes).toString('base64') as Custodian;
}

export function custodianBytes(custodian: Custodian): Buffer {
  return Buffer.from(custodian, 'base64');
}

/** True when parseNamespace accepts `input` (it then answers it unchanged). */
export function isNamespace(input: string): boolean {
  const bytes = Buffer.byteLength(input, 'utf8');
  return bytes > 0 && bytes <= MAX_NAMESPACE_BYTES && input.isWellFormed();
}

export function parseNamespace(input: string): Namespace {
  const bytes = Buffer.byteLength(input, 'utf8');
  if (bytes === 0) throw new KeyledgerError('ERR_INVALID_NAMESPACE', 'namespace is empty', { bytes });
  if (bytes > MAX_NAMESPACE_BYTES) {
    throw new KeyledgerError(
      'ERR_INVALID_NAMESPACE',
      `namespace is ${bytes} bytes, at most ${MAX_NAMESPACE_BYTES} allowed`,
      { bytes },
    );
  }
  if (!input.isWellFormed()) {
    throw new KeyledgerError('ERR_INVALID_NAMESPACE', 'namespace is not well-formed UTF-16/UTF-8', {});
  }
  return input as Namespace;
}

export function keyScope(custodian: string, namespace: string = GLOBAL_NAMESPACE): KeyScope {
  return { custodian: parseCustodian(custodian), namespace: parseNamespace(namespace) };
}

/**
 * Parses the HBase shell's scope form `<custodian-b64>[:<namespace>]`. Base64 has no `:`, so the
 * first colon always separates the two and the namespace may itself contain colons.
 */
export function parseScope(input: string): KeyScope {
  const colon = input.indexOf(':');
  if (colon === -1) return keyScope(input);
  return keyScope(input.slice(0, colon), input.slice(colon + 1));
}

export function formatScope(scope: KeyScope): string {
  return `${scope.custodian}:${scope.namespace}`;
}

/** A string usable as a Map key for a scope (same form as formatScope, which is unambiguous). */
export type ScopeKey = Brand<string, 'ScopeKey'>;
export function scopeKey(scope: KeyScope): ScopeKey {
  return scopeKeyOf(scope.custodian, scope.namespace);
}

/** scopeKey without a KeyScope object: the fold looks a scope up per event. */
export function scopeKeyOf(custodian: Custodian, namespace: Namespace): ScopeKey {
  return `${custodian}:${namespace}` as ScopeKey;
}

export function sameScope(a: KeyScope, b: KeyScope): boolean {
  return a.custodian === b.custodian && a.namespace === b.namespace;
}

const METADATA_HASH = /^[A-Za-z0-9_-]{43}$/;
/** True when parseMetadataHash accepts `input` (it then answers it unchanged). */
export function isMetadataHash(input: string): boolean {
  return METADATA_HASH.test(input);
}

export function parseMetadataHash(input: string): MetadataHash {
  if (!isMetadataHash(input)) {
    throw new KeyledgerError(
      'ERR_INVALID_METADATA',
      'metadata hash must be 43 base64url characters (as shown by show-key-status)',
      { metadataHash: input.slice(0, 64) },
    );
  }
  return input as MetadataHash;
}

const KEY_ID = /^[0-9a-f]{32}$/;
/** True when parseKeyId accepts `input` (it then answers it unchanged). */
export function isKeyId(input: string): boolean {
  return KEY_ID.test(input);
}

export function parseKeyId(input: string): KeyId {
  if (!isKeyId(input)) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'key id must be 32 lowercase hex characters', {
      keyId: input.slice(0, 64),
    });
  }
  return input as KeyId;
}
