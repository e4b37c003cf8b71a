import {
  type Custodian,
  type KeyId,
  type MetadataHash,
  type Namespace,
  parseCustodian,
  parseNamespace,
} from '../domain/identities.js';
import type { CachedKey } from './keySource.js';

/**
 * What a decrypting caller expects a ciphertext to be under. A service that decrypts for tenants
 * passes the tenant it acts for, so a ciphertext of another tenant (which the service's ledger can
 * decrypt just as well) fails instead of being opened for the wrong one: no confused deputy.
 */
export interface ExpectedScope {
  /** Custodian, base64 (`*` for the global one): the key must be this custodian's. */
  readonly custodian?: string;
  /** With `custodian`: the key's namespace must be one of these. */
  readonly namespaces?: readonly string[];
}

/** Which key a ciphertext was under: its scope and its ids (plain strings, JSON-serialisable). */
export interface DecryptionKeyInfo {
  readonly custodian: Custodian;
  readonly namespace: Namespace;
  readonly keyId: KeyId;
  readonly metadataHash: MetadataHash;
}

/** A parsed ExpectedScope; null: the caller expects nothing. */
export interface ScopeCheck {
  readonly custodian: Custodian;
  readonly namespaces: ReadonlySet<string> | null;
}

/**
 * Parses the expectation once, at the call (bad input is the caller's error: ERR_INVALID_CUSTODIAN,
 * ERR_INVALID_NAMESPACE, or a TypeError for namespaces without a custodian).
 */
export function scopeCheckOf(expected: ExpectedScope): ScopeCheck | null {
  const { custodian, namespaces } = expected;
  if (custodian === undefined) {
    if (namespaces !== undefined) throw new TypeError('expected namespaces need an expected custodian');
    return null;
  }
  if (typeof custodian !== 'string') throw new TypeError('custodian must be a base64 string');
  if (namespaces !== undefined && !Array.isArray(namespaces)) {
    throw new TypeError('namespaces must be an array of strings');
  }
  return {
    custodian: parseCustodian(custodian),
    namespaces: namespaces === undefined ? null : new Set(namespaces.map((ns) => parseNamespace(ns))),
  };
}

/** True when `key` is in the expected scope (or nothing is expected). */
export function inExpectedScope(key: CachedKey, check: ScopeCheck | null): boolean {
  if (check === null) return true;
  if (key.scope.custodian !== check.custodian) return false;
  return check.namespaces === null || check.namespaces.has(key.scope.namespace);
}

export function keyInfoOf(key: CachedKey): DecryptionKeyInfo {
  return {
    custodian: key.scope.custodian,
    namespace: key.scope.namespace,
    keyId: key.keyId,
    metadataHash: key.metadataHash,
  };
}
