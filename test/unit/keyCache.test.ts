import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  DEFAULT_MAX_ACTIVE_SCOPES,
  DEFAULT_MAX_KEYS,
  DEFAULT_NEGATIVE_TTL_MS,
  KeyCache,
  type KeyCacheOptions,
} from '../../src/cache/keyCache.js';
import type { ActiveResolution, CachedKey, ResolutionTarget } from '../../src/crypto/keySource.js';
import { type KeyId, keyScope, parseCustodian, scopeKey } from '../../src/domain/identities.js';
import { keyIdOf, metadataHashOf } from '../../src/domain/keyDigests.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

const CUST = parseCustodian(Buffer.from('tenant-1').toString('base64'));

/** A usable key of namespace `ns` named `name`, with fresh random bytes the cache will own. */
function cachedKey(ns: string, name: string, state: 'ACTIVE' | 'INACTIVE' = 'ACTIVE'): CachedKey {
  const scope = keyScope(CUST, ns);
  const metadataHash = metadataHashOf(JSON.stringify({ ns, name }));
  return {
    keyId: keyIdOf(scope, metadataHash),
    scope,
    scopeKey: scopeKey(scope),
    state,
    metadataHash,
    checksum: '0123456789abcdef',
    key: SecretBytes.adopt(randomBytes(32)),
  };
}

/** The same key id as `key` with other bytes and (optionally) another state. */
function sameIdAs(key: CachedKey, state: 'ACTIVE' | 'INACTIVE' = key.state): CachedKey {
  return { ...key, state, key: SecretBytes.adopt(randomBytes(32)) };
}

function target(...namespaces: string[]): ResolutionTarget {
  const scopes = namespaces.map((ns) => keyScope(CUST, ns));
  const scopeKeys = scopes.map(scopeKey);
  return {
    custodian: CUST,
    namespaces: scopes.map((s) => s.namespace),
    scopes,
    scopeKeys,
    cacheKey: scopeKeys.join('\0'),
  };
}

/** The resolution of `t` to `key`, which must belong to one of its candidates. */
function resolution(t: ResolutionTarget, key: CachedKey): ActiveResolution {
  const candidate = t.scopeKeys.indexOf(key.scopeKey);
  assert.ok(candidate >= 0, 'the key must belong to a candidate');
  return { scope: key.scope, candidate, key };
}

/** A clock the test moves (starting well away from 0). */
function fakeClock(start = 1_000_000) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

function cacheWith(options: KeyCacheOptions = {}) {
  return new KeyCache(options);
}

describe('KeyCache: bounds', () => {
  it('holds at most maxKeys under a flood of 10k distinct keys, counting every eviction', () => {
    const cache = cacheWith({ maxKeys: 100 });
    const keys: CachedKey[] = [];
    for (let i = 0; i < 10_000; i++) {
      const key = cachedKey(`ns${i}`, 'k');
      keys.push(key);
      assert.equal(cache.putKey(key), key);
      assert.ok(cache.size.keys <= 100, `size ${cache.size.keys} after ${i + 1} keys`);
    }
    assert.equal(cache.size.keys, 100);
    assert.equal(cache.size.maxKeys, 100);
    assert.equal(cache.counters.evictions, 9_900);
    assert.equal(cache.counters.invalidations, 0);
    // Every key that left was zeroed; the 100 most recent are held and intact.
    assert.ok(keys.slice(0, 9_900).every((k) => k.key.isZeroed));
    assert.ok(keys.slice(9_900).every((k) => !k.key.isZeroed));
    assert.equal(cache.peekKey(keys[0]?.keyId as KeyId), undefined);
    assert.equal(cache.peekKey(keys[9_999]?.keyId as KeyId), keys[9_999]);
  });

  it('holds at most maxActiveScopes under a flood of 10k distinct resolution targets', () => {
    const cache = cacheWith({ maxActiveScopes: 50 });
    const global = cache.putKey(cachedKey('*', 'g'));
    for (let i = 0; i < 10_000; i++) {
      const t = target(`t${i}/f`, `t${i}`, '*');
      if (i % 2 === 0) cache.putResolution(t, resolution(t, global));
      else cache.putNegativeResolution(t);
      assert.ok(cache.size.resolutions <= 50, `size ${cache.size.resolutions} after ${i + 1} targets`);
    }
    assert.equal(cache.size.resolutions, 50);
    assert.equal(cache.size.maxResolutions, 50);
    assert.equal(cache.counters.evictions, 9_950);
    // The held key was never a victim of the resolution flood.
    assert.equal(global.key.isZeroed, false);
    // The scope index kept up with the evictions: an evicted target's scope invalidates nothing,
    // and the global scope invalidates exactly the 50 resolutions still held.
    cache.invalidateScope(target('t0').scopeKeys[0] as (typeof global)['scopeKey']);
    assert.equal(cache.counters.invalidations, 0);
    cache.invalidateScope(global.scopeKey);
    assert.equal(cache.counters.invalidations, 50);
    assert.equal(cache.size.resolutions, 0);
  });

  it('exposes the HBase default sizes and the default negative lifetime', () => {
    const cache = cacheWith();
    assert.equal(cache.size.maxKeys, DEFAULT_MAX_KEYS);
    assert.equal(cache.size.maxResolutions, DEFAULT_MAX_ACTIVE_SCOPES);
    assert.equal(DEFAULT_MAX_KEYS, 1000);
    assert.equal(DEFAULT_MAX_ACTIVE_SCOPES, 100);
    assert.equal(DEFAULT_NEGATIVE_TTL_MS, 30_000);
  });
});

describe('KeyCache: zeroing', () => {
  it('zeroes a key evicted by LRU (the least recently used one)', () => {
    const cache = cacheWith({ maxKeys: 2 });
    const a = cache.putKey(cachedKey('a', 'k'));
    const b = cache.putKey(cachedKey('b', 'k'));
    assert.equal(cache.peekKey(a.keyId), a); // a is now more recent than b
    const c = cache.putKey(cachedKey('c', 'k'));
    assert.equal(b.key.isZeroed, true);
    assert.equal(a.key.isZeroed, false);
    assert.equal(c.key.isZeroed, false);
    assert.equal(cache.peekKey(b.keyId), undefined);
    assert.equal(cache.counters.evictions, 1);
  });

  it('zeroes a key on invalidateKey and counts the invalidation', () => {
    const cache = cacheWith();
    const k = cache.putKey(cachedKey('a', 'k'));
    cache.invalidateKey(k.keyId);
    assert.equal(k.key.isZeroed, true);
    assert.throws(() => k.key.expose(), TypeError);
    assert.equal(cache.peekKey(k.keyId), undefined);
    assert.equal(cache.counters.invalidations, 1);
    assert.equal(cache.counters.evictions, 0);
    // Invalidating what is not held counts nothing.
    cache.invalidateKey(k.keyId);
    assert.equal(cache.counters.invalidations, 1);
  });

  it('zeroes exactly the keys of one scope on invalidateKeysOf (interleaved with other scopes)', () => {
    const cache = cacheWith();
    const ofA: CachedKey[] = [];
    const others: CachedKey[] = [];
    for (let i = 0; i < 20; i++) {
      ofA.push(cache.putKey(cachedKey('a', `k${i}`, i === 0 ? 'ACTIVE' : 'INACTIVE')));
      others.push(cache.putKey(cachedKey(`other${i % 3}`, `k${i}`)));
    }
    cache.putNegativeKey(cachedKey('a', 'missing').keyId);
    const ta = target('a', '*');
    cache.putResolution(ta, resolution(ta, ofA[0] as CachedKey));
    const tb = target('other0');
    cache.putResolution(tb, resolution(tb, others[0] as CachedKey));

    cache.invalidateKeysOf(ofA[0]?.scopeKey as CachedKey['scopeKey']);
    assert.ok(
      ofA.every((k) => k.key.isZeroed),
      'every key of the scope is zeroed',
    );
    assert.ok(
      ofA.every((k) => cache.peekKey(k.keyId) === undefined),
      'and gone',
    );
    assert.ok(
      others.every((k) => !k.key.isZeroed && cache.peekKey(k.keyId) === k),
      'other scopes untouched',
    );
    assert.equal(cache.peekActive(ta), undefined, "the scope's resolution is gone");
    assert.equal(cache.peekActive(tb)?.key, others[0]);
    assert.equal(cache.counters.invalidations, 20 + 1);
  });

  it('zeroes every key on clear and empties both caches', () => {
    const cache = cacheWith();
    const keys = [cachedKey('a', 'k'), cachedKey('b', 'k'), cachedKey('c', 'k')].map((k) => cache.putKey(k));
    const t = target('a');
    cache.putResolution(t, resolution(t, keys[0] as CachedKey));
    cache.putNegativeResolution(target('x'));
    cache.putNegativeKey(cachedKey('x', 'k').keyId);
    cache.clear();
    assert.ok(keys.every((k) => k.key.isZeroed));
    assert.deepEqual(
      { keys: cache.size.keys, resolutions: cache.size.resolutions, negative: cache.size.negative },
      { keys: 0, resolutions: 0, negative: 0 },
    );
    assert.equal(cache.peekActive(t), undefined);
    assert.equal(cache.counters.invalidations, 4 + 2);
  });

  it('zeroes the held key when the same key id is put in another state, and serves the new one', () => {
    const cache = cacheWith();
    const active = cache.putKey(cachedKey('a', 'k'));
    const t = target('a');
    cache.putResolution(t, resolution(t, active));
    const inactive = sameIdAs(active, 'INACTIVE');
    assert.equal(cache.putKey(inactive), inactive);
    assert.equal(active.key.isZeroed, true);
    assert.equal(inactive.key.isZeroed, false);
    assert.equal(cache.peekKey(active.keyId), inactive);
    // The resolution that pointed at the replaced bytes went with them.
    assert.equal(cache.peekActive(t), undefined);
  });

  it('keeps one copy of a key put again in the same state (the new copy is zeroed)', () => {
    const cache = cacheWith();
    const first = cache.putKey(cachedKey('a', 'k'));
    const again = sameIdAs(first);
    assert.equal(cache.putKey(again), first);
    assert.equal(first.key.isZeroed, false);
    assert.equal(again.key.isZeroed, true);
    assert.equal(cache.size.keys, 1);
    // Putting the held object itself changes nothing.
    assert.equal(cache.putKey(first), first);
    assert.equal(first.key.isZeroed, false);
  });
});

describe('KeyCache: resolutions follow their keys', () => {
  it('drops a resolution whose key is evicted by LRU', () => {
    const cache = cacheWith({ maxKeys: 1 });
    const k = cache.putKey(cachedKey('t', 'k'));
    const t = target('t/f', 't', '*');
    cache.putResolution(t, resolution(t, k));
    assert.equal(cache.peekActive(t)?.key, k);
    cache.putKey(cachedKey('u', 'k')); // evicts k
    assert.equal(k.key.isZeroed, true);
    assert.equal(cache.peekActive(t), undefined);
  });

  it('drops a resolution whose key is invalidated, and keeps unrelated ones', () => {
    const cache = cacheWith();
    const k = cache.putKey(cachedKey('t', 'k'));
    const u = cache.putKey(cachedKey('u', 'k'));
    const t = target('t', '*');
    const other = target('u');
    cache.putResolution(t, resolution(t, k));
    cache.putResolution(other, resolution(other, u));
    cache.invalidateKey(k.keyId);
    assert.equal(cache.peekActive(t), undefined);
    assert.equal(cache.peekActive(other)?.key, u);
    // One key and one resolution left because of the event.
    assert.equal(cache.counters.invalidations, 2);
  });
});

describe('KeyCache: negative entries', () => {
  // KeyCache reads a given clock on every check (lru-cache's ttlResolution 0), so moving the fake
  // clock is enough: no real time has to pass.
  it('believes a negative resolution until negativeTtlMs has passed, not after', () => {
    const clock = fakeClock();
    const cache = cacheWith({ now: clock.now, negativeTtlMs: 100 });
    const t = target('t', '*');
    cache.putNegativeResolution(t);
    assert.equal(cache.peekActive(t), null);
    assert.equal(cache.size.negative, 1);
    clock.t += 100; // exactly the lifetime: still believed
    assert.equal(cache.peekActive(t), null);
    clock.t += 1;
    assert.equal(cache.peekActive(t), undefined);
    assert.equal(cache.counters.evictions, 1);
    assert.equal(cache.size.resolutions, 0);
  });

  it('believes a negative key until negativeTtlMs has passed, not after', () => {
    const clock = fakeClock();
    const cache = cacheWith({ now: clock.now, negativeTtlMs: 100 });
    const id = cachedKey('t', 'k').keyId;
    cache.putNegativeKey(id);
    assert.equal(cache.peekKey(id), null);
    clock.t += 100;
    assert.equal(cache.peekKey(id), null);
    clock.t += 1;
    assert.equal(cache.peekKey(id), undefined);
    assert.equal(cache.counters.evictions, 1);
  });

  it('expires negative entries after negativeTtlMs also when real time passes between the steps', async () => {
    const clock = fakeClock();
    const cache = cacheWith({ now: clock.now, negativeTtlMs: 100 });
    const t = target('t');
    const id = cachedKey('t', 'k').keyId;
    cache.putNegativeResolution(t);
    cache.putNegativeKey(id);
    await delay(5);
    clock.t += 100;
    await delay(5);
    assert.equal(cache.peekActive(t), null);
    assert.equal(cache.peekKey(id), null);
    clock.t += 1;
    await delay(5);
    assert.equal(cache.peekActive(t), undefined);
    assert.equal(cache.peekKey(id), undefined);
    assert.equal(cache.counters.evictions, 2);
  });

  it('expires a negative entry made when the clock read 0', async () => {
    const clock = fakeClock(0);
    const cache = cacheWith({ now: clock.now, negativeTtlMs: 100 });
    const t = target('t');
    cache.putNegativeResolution(t);
    clock.t = 1_000;
    await delay(5);
    assert.equal(cache.peekActive(t), undefined);
  });

  it('never expires a positive entry by time', async () => {
    const clock = fakeClock();
    const cache = cacheWith({ now: clock.now, negativeTtlMs: 100 });
    const k = cache.putKey(cachedKey('t', 'k'));
    const t = target('t');
    cache.putResolution(t, resolution(t, k));
    clock.t += 10_000_000;
    await delay(5);
    assert.equal(cache.peekActive(t)?.key, k);
    assert.equal(cache.peekKey(k.keyId), k);
    assert.equal(k.key.isZeroed, false);
  });

  it('a positive put replaces a negative entry (and vice versa for a resolution)', () => {
    const cache = cacheWith();
    const k = cachedKey('t', 'k');
    cache.putNegativeKey(k.keyId);
    assert.equal(cache.peekKey(k.keyId), null);
    assert.equal(cache.putKey(k), k);
    assert.equal(cache.peekKey(k.keyId), k);
    const t = target('t');
    cache.putNegativeResolution(t);
    cache.putResolution(t, resolution(t, k));
    assert.equal(cache.peekActive(t)?.key, k);
    assert.equal(cache.size.negative, 0);
  });
});

describe('KeyCache: invalidateScope', () => {
  it('removes exactly the resolutions whose target lists the scope, positive or negative', () => {
    const cache = cacheWith();
    const kt = cache.putKey(cachedKey('t', 'k'));
    const ku = cache.putKey(cachedKey('u', 'k'));
    const g = cache.putKey(cachedKey('*', 'g'));
    const a = target('t/f', 't', '*');
    const b = target('t', '*');
    const c = target('u', '*');
    const d = target('x');
    const e = target('t/g', 't', '*');
    cache.putResolution(a, resolution(a, kt));
    cache.putResolution(b, resolution(b, kt));
    cache.putResolution(c, resolution(c, ku));
    cache.putNegativeResolution(d);
    cache.putNegativeResolution(e);

    cache.invalidateScope(kt.scopeKey);
    assert.equal(cache.peekActive(a), undefined);
    assert.equal(cache.peekActive(b), undefined);
    assert.equal(cache.peekActive(e), undefined);
    assert.equal(cache.peekActive(c)?.key, ku);
    assert.equal(cache.peekActive(d), null);
    assert.equal(cache.counters.invalidations, 3);
    // Keys are not touched by a scope invalidation.
    assert.equal(cache.peekKey(kt.keyId), kt);
    assert.equal(kt.key.isZeroed, false);

    // A fallback resolution is indexed under every candidate it consulted, the global one included.
    cache.invalidateScope(g.scopeKey);
    assert.equal(cache.peekActive(c), undefined);
    assert.equal(cache.peekActive(d), null);
    assert.equal(cache.counters.invalidations, 4);
  });

  it('indexes a re-put resolution again after its scope was invalidated', () => {
    const cache = cacheWith();
    const k = cache.putKey(cachedKey('t', 'k'));
    const t = target('t', '*');
    cache.putResolution(t, resolution(t, k));
    cache.invalidateScope(k.scopeKey);
    cache.putResolution(t, resolution(t, k));
    cache.invalidateScope(target('*').scopeKeys[0] as CachedKey['scopeKey']);
    assert.equal(cache.peekActive(t), undefined);
  });
});

describe('KeyCache: counters', () => {
  it('counts hits and misses of peekActive and peekKey, and not of heldKey', () => {
    const cache = cacheWith();
    const k = cache.putKey(cachedKey('t', 'k'));
    const t = target('t');
    assert.equal(cache.peekActive(t), undefined); // miss
    cache.putResolution(t, resolution(t, k));
    assert.equal(cache.peekActive(t)?.key, k); // hit
    assert.equal(cache.peekKey(k.keyId), k); // hit
    assert.equal(cache.peekKey(cachedKey('t', 'other').keyId), undefined); // miss
    cache.putNegativeKey(cachedKey('t', 'neg').keyId);
    assert.equal(cache.peekKey(cachedKey('t', 'neg').keyId), null); // a negative answer is a hit
    assert.equal(cache.heldKey(k.keyId), k);
    assert.equal(cache.heldKey(cachedKey('t', 'neg').keyId), undefined);
    assert.deepEqual({ ...cache.counters }, { hits: 3, misses: 2, evictions: 0, invalidations: 0 });
  });
});

describe('KeyCache: options', () => {
  for (const [name, options] of [
    ['maxKeys 0', { maxKeys: 0 }],
    ['maxKeys -1', { maxKeys: -1 }],
    ['maxKeys 1.5', { maxKeys: 1.5 }],
    ['maxKeys NaN', { maxKeys: Number.NaN }],
    ['maxActiveScopes 0', { maxActiveScopes: 0 }],
    ['maxActiveScopes 2.5', { maxActiveScopes: 2.5 }],
    ['maxActiveScopes Infinity', { maxActiveScopes: Number.POSITIVE_INFINITY }],
    ['negativeTtlMs 0', { negativeTtlMs: 0 }],
    ['negativeTtlMs -1', { negativeTtlMs: -1 }],
    ['negativeTtlMs NaN', { negativeTtlMs: Number.NaN }],
  ] as const) {
    it(`refuses ${name} with a TypeError`, () => {
      assert.throws(() => new KeyCache(options as KeyCacheOptions), TypeError);
    });
  }

  it('refuses a size too large to allocate with a TypeError', () => {
    assert.throws(() => new KeyCache({ maxKeys: 2 ** 40 }), TypeError);
  });

  it('accepts the smallest sizes', () => {
    const cache = new KeyCache({ maxKeys: 1, maxActiveScopes: 1, negativeTtlMs: 1 });
    assert.equal(cache.size.maxKeys, 1);
    assert.equal(cache.size.maxResolutions, 1);
  });
});
