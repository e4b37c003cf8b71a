import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type ActiveResolution,
  type CachedKey,
  type KeySource,
  liveActiveKey,
  type ResolutionTarget,
} from '../../src/crypto/keySource.js';
import { KeyledgerError } from '../../src/domain/errors.js';
import { keyScope, scopeKey } from '../../src/domain/identities.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const SCOPE = keyScope(CUST, 'orders');
const TARGET: ResolutionTarget = {
  custodian: CUST,
  namespaces: ['orders'],
  scopes: [SCOPE],
  scopeKeys: [scopeKey(SCOPE)],
  cacheKey: `${CUST}|orders`,
} as unknown as ResolutionTarget;

/**
 * A key source whose L1 evicts (and zeroes) the ACTIVE key while each lookup awaits, `evictions`
 * times: what a cache too small for its working set does under concurrent lookups.
 */
function thrashingSource(evictions: number): KeySource & { lookups: number } {
  const source = {
    lookups: 0,
    target: () => TARGET,
    peekActive: () => undefined,
    async resolveActive(): Promise<ActiveResolution> {
      source.lookups++;
      const key = {
        keyId: 'k1',
        scope: SCOPE,
        scopeKey: scopeKey(SCOPE),
        state: 'ACTIVE',
        metadataHash: 'h1',
        checksum: 'c1',
        key: SecretBytes.adopt(randomBytes(32)),
      } as unknown as CachedKey;
      if (source.lookups <= evictions) key.key.zero();
      return { scope: SCOPE, candidate: 0, key };
    },
    resolveForDecrypt: async () => null,
    onKeyLeave: () => () => {},
  };
  return source;
}

describe('an ACTIVE key that keeps leaving L1 before it can be used', () => {
  it('given a key evicted during every lookup, when a write resolves it, then ERR_KEY_CACHE_THRASHING (not ERR_NO_ACTIVE_KEY: the scope has one)', async () => {
    const keys = thrashingSource(Number.POSITIVE_INFINITY);
    await assert.rejects(liveActiveKey(keys, TARGET), (error: unknown) => {
      assert.ok(error instanceof KeyledgerError);
      assert.equal(error.code, 'ERR_KEY_CACHE_THRASHING');
      assert.deepEqual(error.details, { custodian: CUST });
      return true;
    });
    assert.equal(keys.lookups, 3, 'it retried before giving up');
  });

  it('given a key evicted during the first lookup only, when a write resolves it, then the second lookup’s live key is used', async () => {
    const keys = thrashingSource(1);
    const resolution = await liveActiveKey(keys, TARGET);
    assert.equal(resolution.key.key.isZeroed, false);
    assert.equal(keys.lookups, 2);
  });
});
