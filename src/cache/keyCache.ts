import { LRUCache } from 'lru-cache';
import type { ActiveResolution, CachedKey, ResolutionTarget } from '../crypto/keySource.js';
import type { KeyId, ScopeKey } from '../domain/identities.js';
import { type LayerCounters, newCounters } from './cacheMetrics.js';

export interface KeyCacheOptions {
  /** Usable keys held (HBase's L1 generic cache: 1000). */
  readonly maxKeys?: number;
  /** Namespace resolutions held (HBase's L1 active cache: 100 scopes). */
  readonly maxActiveScopes?: number;
  /** How long a FAILED (negative) entry is believed, in ms (default 30 s; HBase's never expire). */
  readonly negativeTtlMs?: number;
  /** Clock for TTLs (tests). */
  readonly now?: () => number;
}

const NEGATIVE = Symbol('negative');
type Negative = typeof NEGATIVE;
type ResolutionEntry = {
  readonly target: ResolutionTarget;
  readonly resolution: ActiveResolution | Negative;
};

export const DEFAULT_MAX_KEYS = 1000;
export const DEFAULT_MAX_ACTIVE_SCOPES = 100;
export const DEFAULT_NEGATIVE_TTL_MS = 30_000;
/** lru-cache preallocates arrays of `max` entries: keep sizes sane. */
const MAX_CACHE_SIZE = 1 << 24;

/**
 * L1: two bounded LRU caches — usable keys by id, and namespace resolutions by target — plus an
 * index from scope to the resolutions that consulted it, so that an event about a scope evicts
 * exactly the resolutions it could change. Keys leaving the cache for any reason are zeroed, and
 * resolutions that point at them go with them.
 */
export class KeyCache {
  readonly counters: LayerCounters = newCounters();
  readonly #keys: LRUCache<KeyId, CachedKey>;
  /**
   * FAILED answers for key ids, apart from the keys: a flood of lookups for ids nobody has (any
   * caller can send garbage ciphertexts) must not push usable keys out of L1.
   */
  readonly #negativeKeys: LRUCache<KeyId, true>;
  readonly #resolutions: LRUCache<string, ResolutionEntry>;
  readonly #byScope = new Map<ScopeKey, Set<string>>();
  readonly #negativeTtl: number;
  readonly #leaveListeners = new Set<(key: CachedKey) => void>();
  #invalidating = false;

  constructor(options: KeyCacheOptions = {}) {
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    const maxScopes = options.maxActiveScopes ?? DEFAULT_MAX_ACTIVE_SCOPES;
    this.#negativeTtl = options.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS;
    for (const size of [maxKeys, maxScopes]) {
      if (!Number.isInteger(size) || size < 1 || size > MAX_CACHE_SIZE) {
        throw new TypeError(`cache sizes must be integers from 1 to ${MAX_CACHE_SIZE}`);
      }
    }
    if (!(this.#negativeTtl > 0)) throw new TypeError('negativeTtlMs must be positive');
    // lru-cache reads its clock at most once per ttlResolution ms of real time and takes a start
    // time of 0 as "no TTL": a given clock is read every time, and shifted off zero.
    const now = options.now;
    const perf = now === undefined ? undefined : { now: () => now() + 1 };
    const clock = perf === undefined ? {} : { perf, ttlResolution: 0 };
    this.#negativeKeys = new LRUCache<KeyId, true>({
      max: maxKeys,
      ...clock,
      dispose: (_value, _id, reason) => {
        if (reason === 'evict' || reason === 'expire') this.counters.evictions++;
      },
    });
    this.#keys = new LRUCache<KeyId, CachedKey>({
      max: maxKeys,
      ...clock,
      dispose: (value, _id, reason) => {
        if (reason === 'evict' || reason === 'expire') this.counters.evictions++;
        // Listeners first: what they derived from the key goes with it, while it is still intact.
        for (const listener of this.#leaveListeners) listener(value);
        value.key.zero();
        this.#dropScope(value.scopeKey);
      },
    });
    this.#resolutions = new LRUCache<string, ResolutionEntry>({
      max: maxScopes,
      ...clock,
      dispose: (entry, cacheKey, reason) => {
        if (reason === 'evict' || reason === 'expire') this.counters.evictions++;
        // A replaced entry has the same target, so its index entries are still right.
        if (reason === 'set') return;
        for (const sk of entry.target.scopeKeys) {
          const set = this.#byScope.get(sk);
          set?.delete(cacheKey);
          if (set?.size === 0) this.#byScope.delete(sk);
        }
      },
    });
  }

  /** Called whenever a key leaves L1 (for any reason), before its bytes are zeroed. */
  onKeyLeave(listener: (key: CachedKey) => void): () => void {
    this.#leaveListeners.add(listener);
    return () => this.#leaveListeners.delete(listener);
  }

  /** L1 lookup of a resolution: the resolution, null for a cached FAILED answer, undefined on a miss. */
  peekActive(target: ResolutionTarget): ActiveResolution | null | undefined {
    const entry = this.#resolutions.get(target.cacheKey);
    if (entry === undefined) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    return entry.resolution === NEGATIVE ? null : entry.resolution;
  }

  /** L1 lookup of a usable key: the key, null for a cached FAILED answer, undefined on a miss. */
  peekKey(keyId: KeyId): CachedKey | null | undefined {
    const entry = this.#keys.get(keyId) ?? (this.#negativeKeys.get(keyId) ? null : undefined);
    if (entry === undefined) this.counters.misses++;
    else this.counters.hits++;
    return entry;
  }

  /** The held key without counting a lookup (the resolver's own L2 path uses it). */
  heldKey(keyId: KeyId): CachedKey | undefined {
    return this.#keys.get(keyId);
  }

  /** Holds `key` (taking ownership of its bytes) and returns the cached entry. */
  putKey(key: CachedKey): CachedKey {
    const held = this.#keys.get(key.keyId);
    this.#negativeKeys.delete(key.keyId);
    if (held !== undefined && held.state === key.state) {
      // Already held as it is: keep one copy of the bytes.
      if (held !== key) key.key.zero();
      return held;
    }
    this.#keys.set(key.keyId, key);
    return key;
  }

  putNegativeKey(keyId: KeyId): void {
    this.#negativeKeys.set(keyId, true, { ttl: this.#negativeTtl });
  }

  /**
   * `provisional`: an earlier candidate was skipped only because the provider had no answer for it
   * yet (FAILED, down or slow), so the resolution is believed only as long as a FAILED entry.
   */
  putResolution(target: ResolutionTarget, resolution: ActiveResolution, provisional = false): void {
    this.#index(target);
    this.#resolutions.set(
      target.cacheKey,
      { target, resolution },
      provisional ? { ttl: this.#negativeTtl } : {},
    );
  }

  putNegativeResolution(target: ResolutionTarget): void {
    this.#index(target);
    this.#resolutions.set(target.cacheKey, { target, resolution: NEGATIVE }, { ttl: this.#negativeTtl });
  }

  /** An event changed a scope: every resolution that consulted it must be decided again. */
  invalidateScope(scopeKey: ScopeKey): void {
    this.#invalidate(() => this.#dropScope(scopeKey));
  }

  /** An event changed a key (disabled, state changed, ejected): it leaves L1 and is zeroed. */
  invalidateKey(keyId: KeyId): void {
    this.#invalidate(() => {
      if (this.#keys.delete(keyId)) this.counters.invalidations++;
      if (this.#negativeKeys.delete(keyId)) this.counters.invalidations++;
    });
  }

  /** Every key of a scope leaves L1 (an eject without a key names the whole scope). */
  invalidateKeysOf(scopeKey: ScopeKey): void {
    this.#invalidate(() => {
      for (const [id, value] of this.#keys.entries()) {
        if (value.scopeKey === scopeKey && this.#keys.delete(id)) this.counters.invalidations++;
      }
      this.#dropScope(scopeKey);
    });
  }

  clear(): void {
    this.#invalidate(() => {
      this.counters.invalidations += this.#keys.size + this.#negativeKeys.size + this.#resolutions.size;
      this.#resolutions.clear();
      this.#keys.clear();
      this.#negativeKeys.clear();
      this.#byScope.clear();
    });
  }

  get size(): {
    keys: number;
    maxKeys: number;
    resolutions: number;
    maxResolutions: number;
    negative: number;
  } {
    let negative = this.#negativeKeys.size;
    for (const entry of this.#resolutions.values()) if (entry.resolution === NEGATIVE) negative++;
    return {
      keys: this.#keys.size,
      maxKeys: this.#keys.max,
      resolutions: this.#resolutions.size,
      maxResolutions: this.#resolutions.max,
      negative,
    };
  }

  #index(target: ResolutionTarget): void {
    for (const sk of target.scopeKeys) {
      let set = this.#byScope.get(sk);
      if (set === undefined) {
        set = new Set();
        this.#byScope.set(sk, set);
      }
      set.add(target.cacheKey);
    }
  }

  #dropScope(scopeKey: ScopeKey): void {
    const set = this.#byScope.get(scopeKey);
    if (set === undefined) return;
    for (const cacheKey of [...set]) {
      if (this.#resolutions.delete(cacheKey) && this.#invalidating) this.counters.invalidations++;
    }
    this.#byScope.delete(scopeKey);
  }

  #invalidate(work: () => void): void {
    this.#invalidating = true;
    try {
      work();
    } finally {
      this.#invalidating = false;
    }
  }
}
