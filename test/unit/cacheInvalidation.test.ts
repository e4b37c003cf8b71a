import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { registerCacheMetrics } from '../../src/cache/cacheCollectors.js';
import { type Invalidation, invalidationsFor } from '../../src/cache/cacheInvalidation.js';
import type { CacheMetrics } from '../../src/cache/cacheMetrics.js';
import {
  type DomainEvent,
  LEDGER_EVENT_TYPES,
  type LedgerEvent,
  type LedgerEventType,
} from '../../src/domain/events.js';
import { type KeyScope, scopeKey } from '../../src/domain/identities.js';
import {
  enabled,
  enableFailed,
  hashFor,
  keyDisabled,
  keyIdFor,
  keyReenabled,
  keySet,
  managementDisabled,
  OTHER_STK,
  refreshed,
  rotated,
  SCOPE,
  STK,
  storedEvent,
} from '../helpers/domainFixtures.js';

let position = 0n;

/** A domain event as it comes back from the store: through the schema, with metadata and position. */
function stored(event: DomainEvent, streamName = 'kl-test'): LedgerEvent {
  position += 1n;
  return storedEvent(event, {
    streamName,
    revision: 0n,
    position,
    correlationId: 'c-1',
    occurredAt: new Date(Date.UTC(2025, 0, 1)).toISOString(),
  });
}

const sk = scopeKey(SCOPE);
const scopeInv = (scope: KeyScope = SCOPE): Invalidation => ({ kind: 'scope', scopeKey: scopeKey(scope) });
const keyInv = (name: string, scope: KeyScope = SCOPE): Invalidation => ({
  kind: 'key',
  keyId: keyIdFor(scope, name),
});

const covered = new Set<LedgerEventType>();

/** Checks one case and notes its type, so the last test can prove every type was covered. */
function expectInvalidations(event: DomainEvent, expected: readonly Invalidation[]): void {
  covered.add(event.type);
  const ledgerEvent = stored(event);
  assert.deepEqual(invalidationsFor(ledgerEvent), expected);
  // Pure: the same event gives the same answer again.
  assert.deepEqual(invalidationsFor(ledgerEvent), expected);
}

describe('invalidationsFor: scope events', () => {
  it('KeyManagementEnabled (first key): the scope and the new key', () => {
    expectInvalidations(enabled(SCOPE, 'k1'), [scopeInv(), keyInv('k1')]);
  });

  it('KeyManagementEnabled with a previous key: the previous key too', () => {
    expectInvalidations(enabled(SCOPE, 'k2', 'k1'), [scopeInv(), keyInv('k2'), keyInv('k1')]);
  });

  it('ManagedKeyRotated: the scope, the new key and the previous key', () => {
    expectInvalidations(rotated(SCOPE, 'k2', 'k1'), [scopeInv(), keyInv('k2'), keyInv('k1')]);
  });

  it('ManagedKeyRotated without a previous key: the scope and the new key', () => {
    expectInvalidations(rotated(SCOPE, 'k2', null, OTHER_STK), [scopeInv(), keyInv('k2')]);
  });

  it('ManagedKeySet: the scope, the key set and the previous ACTIVE key', () => {
    expectInvalidations(keySet(SCOPE, 'k2', 'k1'), [scopeInv(), keyInv('k2'), keyInv('k1')]);
    expectInvalidations(keySet(SCOPE, 'k2', null), [scopeInv(), keyInv('k2')]);
  });

  it('ManagedKeyImported: as ManagedKeySet (the scope, the key, the previous ACTIVE key)', () => {
    const { key } = keySet(SCOPE, 'k2', 'k1').data;
    expectInvalidations(
      {
        type: 'ManagedKeyImported',
        data: {
          ...SCOPE,
          key,
          state: 'ACTIVE',
          previousKeyId: keySet(SCOPE, 'k2', 'k1').data.previousKeyId,
          origin: { alias: 'k2', checksum: key.checksum },
        },
      },
      [scopeInv(), keyInv('k2'), keyInv('k1')],
    );
  });

  it('KeyManagementEnableFailed (FAILED or DISABLED marker): the scope only', () => {
    expectInvalidations(enableFailed(SCOPE, 'FAILED'), [scopeInv()]);
    expectInvalidations(enableFailed(SCOPE, 'DISABLED'), [scopeInv()]);
  });

  it('KeyManagementDisabled: the scope and every key it deactivated', () => {
    expectInvalidations(managementDisabled(SCOPE, 'k1', 'k2'), [scopeInv(), keyInv('k1'), keyInv('k2')]);
    expectInvalidations(managementDisabled(SCOPE), [scopeInv()]);
  });

  it('ManagedKeyDisabled: the scope and the key', () => {
    expectInvalidations(keyDisabled(SCOPE, 'k1', 'ACTIVE'), [scopeInv(), keyInv('k1')]);
    expectInvalidations(keyDisabled(SCOPE, 'k1', 'INACTIVE'), [scopeInv(), keyInv('k1')]);
  });

  it('ManagedKeyReenabled: the scope and the key (a negative entry for it must go)', () => {
    expectInvalidations(keyReenabled(SCOPE, 'k1'), [scopeInv(), keyInv('k1')]);
  });

  it('ManagedKeyRefreshed with a state change: the scope and the key', () => {
    for (const [from, to, provider] of [
      ['ACTIVE', 'DISABLED', 'DISABLED'],
      ['INACTIVE', 'DISABLED', 'DISABLED'],
      ['ACTIVE', 'INACTIVE', 'INACTIVE'],
      ['INACTIVE', 'ACTIVE', 'ACTIVE'],
    ] as const) {
      expectInvalidations(refreshed(SCOPE, 'k1', from, to, provider), [scopeInv(), keyInv('k1')]);
    }
  });

  it('ManagedKeyRefreshed without a state change: nothing (a refresh time is no reason to evict)', () => {
    for (const [state, provider] of [
      ['ACTIVE', 'ACTIVE'],
      ['ACTIVE', 'FAILED'],
      ['INACTIVE', 'INACTIVE'],
      ['INACTIVE', 'FAILED'],
    ] as const) {
      expectInvalidations(refreshed(SCOPE, 'k1', state, state, provider), []);
    }
  });

  const dueAt = new Date(Date.UTC(2025, 0, 8)).toISOString();

  it('ManagedKeyDestructionScheduled and ...Cancelled: nothing (the key keeps its state until destroyed)', () => {
    const keyId = keyIdFor(SCOPE, 'k1');
    expectInvalidations(
      { type: 'ManagedKeyDestructionScheduled', data: { ...SCOPE, keyId, state: 'INACTIVE', dueAt } },
      [],
    );
    expectInvalidations({ type: 'ManagedKeyDestructionCancelled', data: { ...SCOPE, keyId, dueAt } }, []);
  });

  it('ManagedKeyDestroyed: the scope and the key (its material is gone: zeroed, never rebuilt)', () => {
    expectInvalidations(
      {
        type: 'ManagedKeyDestroyed',
        data: {
          ...SCOPE,
          keyId: keyIdFor(SCOPE, 'k1'),
          metadataHash: hashFor(SCOPE, 'k1'),
          previousState: 'DISABLED',
          receipt: {
            materialStream: `kl-material-${keyIdFor(SCOPE, 'k1')}`,
            materialEvents: 1,
            materialHash: '0'.repeat(64),
            scheduledAt: new Date(Date.UTC(2025, 0, 1)).toISOString(),
            dueAt,
          },
        },
      },
      [scopeInv(), keyInv('k1')],
    );
  });
});

describe('invalidationsFor: operational events', () => {
  it('CacheEntryEjected with a key: the scope and that key', () => {
    expectInvalidations({ type: 'CacheEntryEjected', data: { ...SCOPE, keyId: keyIdFor(SCOPE, 'k1') } }, [
      scopeInv(),
      keyInv('k1'),
    ]);
  });

  it('CacheEntryEjected without a key: every key of the scope', () => {
    expectInvalidations({ type: 'CacheEntryEjected', data: { ...SCOPE, keyId: null } }, [
      { kind: 'keysOf', scopeKey: sk },
    ]);
  });

  it('CacheCleared: everything', () => {
    expectInvalidations({ type: 'CacheCleared', data: {} }, [{ kind: 'all' }]);
  });
});

describe('invalidationsFor: system-key and material events', () => {
  const systemKey = (sequence: number, identity: string, previousIdentity: string | null) => ({
    sequence,
    identity,
    metadata: JSON.stringify({ KeyAlias: `stk-${sequence}` }),
    metadataHash: hashFor(SCOPE, `stk-${sequence}`),
    previousIdentity,
  });

  it('SystemKeyRecorded and SystemKeyRotated: nothing (cached DEKs stay valid, old STKs are kept)', () => {
    expectInvalidations({ type: 'SystemKeyRecorded', data: systemKey(1, STK, null) }, []);
    expectInvalidations({ type: 'SystemKeyRotated', data: systemKey(2, OTHER_STK, STK) }, []);
  });

  it('KeyMaterialWrapped: nothing (a rewrap leaves the DEK unchanged)', () => {
    expectInvalidations(
      {
        type: 'KeyMaterialWrapped',
        data: {
          ...SCOPE,
          keyId: keyIdFor(SCOPE, 'k1'),
          metadataHash: hashFor(SCOPE, 'k1'),
          stkIdentity: OTHER_STK,
          algorithm: 'AES-256-GCM',
          wrapped: Buffer.alloc(60, 1).toString('base64'),
        },
      },
      [],
    );
  });

  it('SystemKeyRetired and rewrap campaign events: nothing (no DEK changes; moved material arrives as KeyMaterialWrapped)', () => {
    const campaignId = '11111111-1111-4111-8111-111111111111';
    expectInvalidations({ type: 'SystemKeyRetired', data: { identity: STK, sequence: 1 } }, []);
    // Destroyed only once retired: no cached DEK is under it.
    expectInvalidations(
      { type: 'SystemKeyDestroyed', data: { identity: STK, sequence: 1, metadata: '{"KeyAlias":"stk-1"}' } },
      [],
    );
    expectInvalidations(
      { type: 'RewrapStarted', data: { campaignId, targetStkIdentity: OTHER_STK, keys: 2 } },
      [],
    );
    expectInvalidations(
      {
        type: 'RewrapProgressed',
        data: { campaignId, done: 1, lastKeyId: keyIdFor(SCOPE, 'k1'), rewrapped: 1, skipped: 0 },
      },
      [],
    );
    expectInvalidations(
      {
        type: 'RewrapRetargeted',
        data: { campaignId, targetStkIdentity: STK, previousTargetStkIdentity: OTHER_STK, keys: 2 },
      },
      [],
    );
    expectInvalidations({ type: 'RewrapFinished', data: { campaignId, rewrapped: 2, skipped: 0 } }, []);
  });

  it('LedgerCheckpointed: nothing (tamper evidence; no key changes)', () => {
    expectInvalidations(
      {
        type: 'LedgerCheckpointed',
        data: {
          previousPosition: '0',
          coveredPosition: '7',
          heads: [{ stream: 'kl-system', revision: '0', position: '1', hash: 'ab'.repeat(32) }],
          stkIdentity: STK,
          mac: 'cd'.repeat(32),
        },
      },
      [],
    );
  });

  it('API token events: nothing (tokens authenticate callers of the service; no key changes)', () => {
    const tokenId = '0123456789abcdef';
    expectInvalidations(
      {
        type: 'ApiTokenCreated',
        data: { tokenId, principal: 'app-1', grants: ['audit:*'], hash: 'ab'.repeat(32), expiresAt: null },
      },
      [],
    );
    expectInvalidations({ type: 'ApiTokenRevoked', data: { tokenId } }, []);
  });

  it('rotation policy events: nothing (a policy says when to rotate; the rotation is a scope event)', () => {
    const target = { kind: 'default' as const };
    expectInvalidations(
      { type: 'RotationPolicySet', data: { target, periodMs: 86_400_000, disableInactiveAfterMs: null } },
      [],
    );
    expectInvalidations({ type: 'RotationPolicyCleared', data: { target } }, []);
  });

  it('key claims: nothing (the import that follows the claim is what changes keys)', () => {
    expectInvalidations(
      {
        type: 'ManagedKeyClaimed',
        data: { ...SCOPE, keyId: keyIdFor(SCOPE, 'k1'), checksum: '0123456789abcdef' },
      },
      [],
    );
  });

  it('legacy re-encryption events: nothing (bookkeeping; no key changes)', () => {
    const campaign = 'orders-2019';
    expectInvalidations(
      {
        type: 'LegacyReencryptionStarted',
        data: {
          campaign,
          ...SCOPE,
          keyId: keyIdFor(SCOPE, 'k1'),
          metadataHash: hashFor(SCOPE, 'k1'),
          algorithm: 'aes-256-gcm',
          total: null,
        },
      },
      [],
    );
    expectInvalidations(
      {
        type: 'LegacyReencryptionProgressed',
        data: {
          campaign,
          batch: 1,
          lastRecordId: 'r1',
          reencrypted: 1,
          failed: 0,
          skipped: 0,
          failedIds: [],
        },
      },
      [],
    );
    expectInvalidations(
      { type: 'LegacyReencryptionCompleted', data: { campaign, reencrypted: 1, failed: 0, skipped: 0 } },
      [],
    );
  });

  it('every ledger event type has a case above', () => {
    assert.deepEqual([...covered].sort(), [...LEDGER_EVENT_TYPES].sort());
  });
});

// ---------------------------------------------------------------------------------------------

const METRICS: CacheMetrics = {
  l1: { hits: 101, misses: 102, evictions: 103, invalidations: 104 },
  l1Keys: { size: 7, max: 1000 },
  l1Resolutions: { size: 3, max: 100 },
  l2: { hits: 201, misses: 202, evictions: 0, invalidations: 0 },
  l3: { hits: 301, misses: 302, evictions: 0, invalidations: 0, failures: 9 },
  negativeEntries: 2,
  appliedPosition: 2n ** 60n + 1n,
};

interface Family {
  help: string | undefined;
  type: string | undefined;
  samples: { labels: string; value: string }[];
}

/** Parses exposition text (format 0.0.4), failing on any line that does not fit it. */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { help: undefined, type: undefined, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  // Empty lines are allowed (and ignored) by the exposition format; prom-client puts one between families.
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const help = new RegExp(`^# HELP (${NAME}) (.+)$`).exec(line);
    const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    const sample = new RegExp(
      `^(${NAME})(\\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\\\\n]*",?)*\\})? (-?[0-9]+(?:\\.[0-9]+)?)$`,
    ).exec(line);
    if (help) {
      const f = family(help[1] as string);
      assert.equal(f.help, undefined, `one HELP for ${help[1]}`);
      assert.equal(f.samples.length, 0, 'HELP before samples');
      f.help = help[2];
    } else if (type) {
      const f = family(type[1] as string);
      assert.equal(f.type, undefined, `one TYPE for ${type[1]}`);
      assert.equal(f.samples.length, 0, 'TYPE before samples');
      f.type = type[2];
    } else if (sample) {
      const f = families.get(sample[1] as string);
      assert.ok(f?.type !== undefined, `sample ${sample[1]} has a TYPE line before it`);
      f.samples.push({ labels: sample[2] ?? '', value: sample[3] as string });
    } else {
      assert.fail(`not an exposition line: ${JSON.stringify(line)}`);
    }
  }
  return families;
}

function perLayer(f: Family | undefined): Record<string, string> {
  assert.ok(f !== undefined);
  const out: Record<string, string> = {};
  for (const s of f.samples) {
    const layer = /^\{layer="(l[123])"\}$/.exec(s.labels)?.[1];
    assert.ok(layer !== undefined, `layer label in ${s.labels}`);
    assert.equal(out[layer], undefined, `one sample per layer (${layer})`);
    out[layer] = s.value;
  }
  return out;
}

/** The exposition text of a registry holding the cache metrics of `metrics`. */
async function exposition(metrics: CacheMetrics, prefix?: string): Promise<string> {
  const registry = new Registry();
  registerCacheMetrics(registry, () => metrics, prefix);
  return registry.metrics();
}

describe('registerCacheMetrics (prom-client)', () => {
  it('writes valid exposition text: HELP and TYPE for every family, samples after them', async () => {
    const families = parseExposition(await exposition(METRICS));
    for (const [name, f] of families) {
      assert.ok(name.startsWith('keyledger_'), name);
      assert.ok(f.help !== undefined && f.help.length > 0, `HELP for ${name}`);
      assert.ok(f.samples.length > 0, `samples for ${name}`);
      if (f.type === 'counter') assert.ok(name.endsWith('_total'), `counter ${name} ends with _total`);
      else assert.equal(f.type, 'gauge', name);
    }
  });

  it('has one sample per layer for each counter, with the metrics values', async () => {
    const families = parseExposition(await exposition(METRICS));
    const layers = ['l1', 'l2', 'l3'] as const;
    for (const [family, field] of [
      ['keyledger_cache_hits_total', 'hits'],
      ['keyledger_cache_misses_total', 'misses'],
      ['keyledger_cache_evictions_total', 'evictions'],
      ['keyledger_cache_invalidations_total', 'invalidations'],
    ] as const) {
      const f = families.get(family);
      assert.equal(f?.type, 'counter', family);
      assert.deepEqual(
        perLayer(f),
        Object.fromEntries(layers.map((l) => [l, String(METRICS[l][field])])),
        family,
      );
    }
    assert.deepEqual(perLayer(families.get('keyledger_provider_failures_total')), { l3: '9' });
  });

  it('writes the gauges: L1 sizes, negative entries and the applied position', async () => {
    const families = parseExposition(await exposition(METRICS));
    const gauge = (name: string) => {
      const f = families.get(name);
      assert.equal(f?.type, 'gauge', name);
      assert.equal(f?.samples.length, 1, name);
      assert.equal(f?.samples[0]?.labels, '', name);
      return f?.samples[0]?.value;
    };
    assert.equal(gauge('keyledger_cache_keys'), '7');
    assert.equal(gauge('keyledger_cache_resolutions'), '3');
    assert.equal(gauge('keyledger_cache_negative_entries'), '2');
    // Prometheus values are float64: a position past 2^53 is shown to float precision.
    assert.equal(Number(gauge('keyledger_applied_position')), Number(2n ** 60n + 1n));
  });

  it('uses the given prefix for every family', async () => {
    const families = parseExposition(await exposition(METRICS, 'kl_test'));
    assert.ok(families.size >= 9);
    for (const name of families.keys()) assert.ok(name.startsWith('kl_test_'), name);
  });
});
