import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Envelope } from '../../src/crypto/envelope.js';
import { EnvelopeStreams } from '../../src/crypto/envelopeStream.js';
import {
  type ActiveResolution,
  type CachedKey,
  type KeySource,
  type ResolutionTarget,
  withActiveKey,
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
    await assert.rejects(
      withActiveKey(keys, TARGET, (r) => r),
      (error: unknown) => {
        assert.ok(error instanceof KeyledgerError);
        assert.equal(error.code, 'ERR_KEY_CACHE_THRASHING');
        assert.deepEqual(error.details, { custodian: CUST });
        return true;
      },
    );
    assert.equal(keys.lookups, 3, 'it retried before giving up');
  });

  it('given a key evicted during the first lookup only, when a write resolves it, then the second lookup’s live key is used', async () => {
    const keys = thrashingSource(1);
    const resolution = await withActiveKey(keys, TARGET, (r) => r);
    assert.equal(resolution.key.key.isZeroed, false);
    assert.equal(keys.lookups, 2);
  });
});

const DEK = randomBytes(32);

/** Resolves after `hops` microtasks: other work finishing between a lookup and its caller's turn. */
async function afterMicrotasks(hops: number): Promise<void> {
  for (let i = 0; i < hops; i++) await Promise.resolve();
}

/**
 * A key source whose first answer is zeroed `hops` microtasks after it is given (as another lookup
 * finishing in between may evict it from a full L1), and whose later answers stay held: a caller
 * that checks the key, awaits, and then uses it finds it zeroed; one that uses it in the turn of
 * the check never does.
 */
function zeroedAfterAnswer(hops: number): KeySource & { lookups: number } {
  const answer = (): CachedKey => {
    source.lookups++;
    const key = {
      keyId: '00112233445566778899aabbccddeeff',
      scope: SCOPE,
      scopeKey: scopeKey(SCOPE),
      state: 'ACTIVE',
      metadataHash: 'h1',
      checksum: 'c1',
      key: SecretBytes.adopt(Buffer.from(DEK)),
    } as unknown as CachedKey;
    if (source.lookups === 1) void afterMicrotasks(hops).then(() => key.key.zero());
    return key;
  };
  const source = {
    lookups: 0,
    target: () => TARGET,
    peekActive: () => undefined,
    resolveActive: async (): Promise<ActiveResolution> => ({ scope: SCOPE, candidate: 0, key: answer() }),
    resolveForDecrypt: async () => answer(),
    onKeyLeave: () => () => {},
  };
  return source;
}

describe('a key zeroed between the lookup that found it held and its caller’s turn', () => {
  const plaintext = Buffer.from('the same answer whichever microtask the eviction lands in');
  const options = { custodian: CUST, namespaces: ['orders'] };

  it('given the first key zeroed 0–6 microtasks after it is answered, when each encrypt and decrypt runs, then every one uses a held key and round-trips', async () => {
    const streams = new EnvelopeStreams(zeroedAfterAnswer(1_000));
    const { ciphertext: streamed } = await streams.encryptBuffer(plaintext, options);
    const message = await new Envelope(zeroedAfterAnswer(1_000)).encrypt(plaintext, options);
    for (let hops = 0; hops <= 6; hops++) {
      const encrypted = await new EnvelopeStreams(zeroedAfterAnswer(hops)).encryptBuffer(plaintext, options);
      assert.deepEqual(
        (await streams.decryptBuffer(encrypted.ciphertext)).plaintext,
        plaintext,
        `encryptBuffer, ${hops} hops`,
      );
      const sealed = await new Envelope(zeroedAfterAnswer(hops)).encrypt(plaintext, options);
      assert.deepEqual(
        await new Envelope(zeroedAfterAnswer(1_000)).decrypt(sealed),
        plaintext,
        `encrypt, ${hops} hops`,
      );
      const opened = await new EnvelopeStreams(zeroedAfterAnswer(hops)).decryptBuffer(streamed);
      assert.deepEqual(opened.plaintext, plaintext, `decryptBuffer, ${hops} hops`);
      assert.deepEqual(
        await new Envelope(zeroedAfterAnswer(hops)).decrypt(message),
        plaintext,
        `decrypt, ${hops} hops`,
      );
    }
  });
});
