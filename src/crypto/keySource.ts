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

/** Lookups retried when the key left L1 (and was zeroed) before it could be used. */
const LIVE_ATTEMPTS = 3;

/**
 * Runs `use` with the ACTIVE key for a target, in the same turn as the check that the key is still
 * held, and answers what `use` answers. A key can leave L1 (and be zeroed) while a lookup awaits —
 * another caller's miss may evict it — and also after a check made in an async function but before
 * its caller resumes (other microtasks run in between: test/unit/keySourceThrashing.test.ts), so
 * the key is handed only to code that runs before anything else can. Looked up again if it went;
 * `use` must not keep the key past its return.
 */
export async function withActiveKey<T>(
  keys: KeySource,
  target: ResolutionTarget,
  use: (resolution: ActiveResolution) => T,
): Promise<T> {
  for (let attempt = 0; attempt < LIVE_ATTEMPTS; attempt++) {
    const resolution = keys.peekActive(target) ?? (await keys.resolveActive(target));
    if (resolution === null) {
      throw new KeyledgerError('ERR_NO_ACTIVE_KEY', 'no candidate namespace has an ACTIVE key', {
        custodian: target.custodian,
      });
    }
    if (!resolution.key.key.isZeroed) return use(resolution);
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
 * Runs `use` with a usable key by id, held in the same turn (as withActiveKey), or with null for
 * anything else, a lookup that fails included: decryption reports every failure as the same one
 * error, so `use` decides what null means.
 */
export async function withKeyForDecrypt<T>(
  keys: KeySource,
  keyId: string,
  use: (key: CachedKey | null) => T,
): Promise<T> {
  for (let attempt = 0; attempt < LIVE_ATTEMPTS; attempt++) {
    let key: CachedKey | null;
    try {
      key = await keys.resolveForDecrypt(keyId);
    } catch {
      return use(null);
    }
    if (key === null) return use(null);
    if (!key.key.isZeroed) return use(key);
  }
  return use(null);
}
