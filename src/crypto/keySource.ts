import { KeyledgerError } from '../domain/errors.js';
import type { Custodian, KeyId, KeyScope, MetadataHash, Namespace, ScopeKey } from '../domain/identities.js';
import type { SecretBytes } from '../secrets/secretBytes.js';

/** A usable key held in L1. `key` belongs to the cache: it is zeroed when the entry leaves. */
export interface CachedKey {
  readonly keyId: KeyId;
  readonly scope: KeyScope;
  readonly scopeKey: ScopeKey;
  readonly state: 'ACTIVE' | 'INACTIVE';
  readonly metadataHash: MetadataHash;
  readonly checksum: string;
  readonly key: SecretBytes;
}

/** Which scope a write should use: the first candidate namespace with an ACTIVE key. */
export interface ActiveResolution {
  readonly scope: KeyScope;
  /** Index of the matching candidate in the target's namespaces. */
  readonly candidate: number;
  readonly key: CachedKey;
}

/**
 * A custodian and its namespace candidates, in the order they are tried, prepared once: a table's
 * candidates do not change, so callers keep the target and the hot path builds no strings.
 */
export interface ResolutionTarget {
  readonly custodian: Custodian;
  readonly namespaces: readonly Namespace[];
  readonly scopes: readonly KeyScope[];
  readonly scopeKeys: readonly ScopeKey[];
  readonly cacheKey: string;
}

/** What envelope encryption needs from key resolution (the ledger's KeyResolver provides it). */
export interface KeySource {
  target(custodian: string, namespaces: readonly string[]): ResolutionTarget;
  peekActive(target: ResolutionTarget): ActiveResolution | null | undefined;
  resolveActive(target: ResolutionTarget): Promise<ActiveResolution | null>;
  resolveForDecrypt(keyId: string): Promise<CachedKey | null>;
  onKeyLeave(listener: (key: CachedKey) => void): () => void;
}

/** Lookups retried when the key left L1 (and was zeroed) while the lookup awaited. */
const LIVE_ATTEMPTS = 3;

/**
 * The ACTIVE key for a target, still held when the caller resumes. A key can leave L1 (and be
 * zeroed) while a lookup awaits — another caller's miss may evict it — so the answer is checked
 * once the await is over, and looked up again if it went. Use it before your next await.
 */
export async function liveActiveKey(keys: KeySource, target: ResolutionTarget): Promise<ActiveResolution> {
  for (let attempt = 0; attempt < LIVE_ATTEMPTS; attempt++) {
    const resolution = keys.peekActive(target) ?? (await keys.resolveActive(target));
    if (resolution === null) {
      throw new KeyledgerError('ERR_NO_ACTIVE_KEY', 'no candidate namespace has an ACTIVE key', {
        custodian: target.custodian,
      });
    }
    if (!resolution.key.key.isZeroed) return resolution;
  }
  throw new KeyledgerError(
    'ERR_KEY_CACHE_THRASHING',
    'the active key kept leaving the cache; raise its size',
    {
      custodian: target.custodian,
    },
  );
}

/**
 * A usable key by id, still held when the caller resumes (as liveActiveKey); null for anything
 * else, a lookup that fails included: decryption reports every failure as the same one error.
 */
export async function liveKeyForDecrypt(keys: KeySource, keyId: string): Promise<CachedKey | null> {
  for (let attempt = 0; attempt < LIVE_ATTEMPTS; attempt++) {
    let key: CachedKey | null;
    try {
      key = await keys.resolveForDecrypt(keyId);
    } catch {
      return null;
    }
    if (key === null) return null;
    if (!key.key.isZeroed) return key;
  }
  return null;
}
