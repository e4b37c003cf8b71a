import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { newLedgerStore } from '../helpers/ledgerStores.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const scope = keyScope(CUST, NS);

async function setup(given?: EventStore) {
  const store = given ?? (await newLedgerStore());
  const provider = new ScriptedProvider();
  const ledger = await Ledger.open({ store, provider, actor: 'test' });
  await ledger.initialise();
  return { store, provider, ledger };
}

async function allEvents(store: EventStore) {
  const events = [];
  for await (const e of store.readAll()) events.push(e);
  return events;
}

/** Asserts the call fails with `code` and that the store did not change. */
async function rejectsWithNothingWritten(store: EventStore, call: () => Promise<unknown>, code: string) {
  const before = await store.headPosition();
  await assert.rejects(call, (error: { code?: string }) => {
    assert.equal(error.code, code);
    return true;
  });
  assert.equal(await store.headPosition(), before, 'nothing may be appended');
}

describe('KeymetaAdmin', () => {
  it('enables, rotates and disables; history has actor, reason and changes', async () => {
    const { provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    const enabled = await ledger.admin.enableKeyManagement(CUST, NS, { reason: 'onboarding' });
    assert.equal(enabled.marker, 'ACTIVE');
    assert.equal(enabled.key?.state, 'ACTIVE');
    assert.match(enabled.key?.checksum ?? '', /^[0-9a-f]{16}$/);

    provider.setKey(scope, 'k2');
    const rotated = await ledger.admin.rotateManagedKey(CUST, NS);
    assert.equal(rotated?.key.state, 'ACTIVE');
    const keys = await ledger.admin.getManagedKeys(CUST, NS);
    assert.deepEqual(
      keys.map((k) => k.state),
      ['INACTIVE', 'ACTIVE'],
    );
    await ledger.admin.disableManagedKey(CUST, NS, keys[0]?.metadataHash ?? '');
    assert.deepEqual(
      (await ledger.admin.getManagedKeys(CUST, NS)).map((k) => k.state),
      ['DISABLED', 'ACTIVE'],
    );
    const history = await ledger.history(CUST, NS);
    assert.deepEqual(
      history.map((h) => h.type),
      ['KeyManagementEnabled', 'ManagedKeyRotated', 'ManagedKeyDisabled'],
    );
    assert.equal(history[0]?.reason, 'onboarding');
    assert.equal(history[0]?.actor, 'test');
    assert.deepEqual(
      history[1]?.keys.map((k) => [k.from, k.to]),
      [
        ['ACTIVE', 'INACTIVE'],
        [null, 'ACTIVE'],
      ],
    );
    await ledger.close();
  });

  it('enabling an enabled scope is a no-op that does not ask the provider', async () => {
    const { provider, ledger, store } = await setup();
    provider.setKey(scope, 'k1');
    const first = await ledger.admin.enableKeyManagement(CUST, NS);
    const calls = provider.calls;
    const head = await store.headPosition();
    const again = await ledger.admin.enableKeyManagement(CUST, NS);
    assert.equal(again.position, null);
    assert.equal(again.key?.keyId, first.key?.keyId);
    assert.equal(provider.calls, calls);
    assert.equal(await store.headPosition(), head);
    await ledger.close();
  });

  it('records a FAILED marker when the provider has no key, and refresh retries enable', async () => {
    const { provider, ledger } = await setup();
    const failed = await ledger.admin.enableKeyManagement(CUST, NS);
    assert.equal(failed.marker, 'FAILED');
    assert.equal(failed.key, null);
    provider.setKey(scope, 'k1');
    await ledger.admin.refreshManagedKeys(CUST, NS);
    const status = await ledger.admin.getScopeStatus(CUST, NS);
    assert.equal(status.marker, 'ACTIVE');
    assert.deepEqual(
      status.keys.map((k) => k.state),
      ['ACTIVE'],
    );
    await ledger.close();
  });

  it('disable-key-management makes every key INACTIVE, is idempotent, and refresh then skips', async () => {
    const { provider, ledger, store } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    provider.setKey(scope, 'k2');
    await ledger.admin.rotateManagedKey(CUST, NS);
    const first = await ledger.admin.disableKeyManagement(CUST, NS);
    assert.notEqual(first.position, null);
    const status = await ledger.admin.getScopeStatus(CUST, NS);
    assert.equal(status.marker, 'DISABLED');
    assert.deepEqual(
      status.keys.map((k) => k.state),
      ['INACTIVE', 'INACTIVE'],
    );
    const head = await store.headPosition();
    assert.equal((await ledger.admin.disableKeyManagement(CUST, NS)).position, null);
    assert.equal((await ledger.admin.refreshManagedKeys(CUST, NS)).skipped, true);
    assert.equal(await store.headPosition(), head);
    // Enabling again brings the provider's current key back as ACTIVE (no new key record).
    await ledger.admin.enableKeyManagement(CUST, NS);
    assert.deepEqual(
      (await ledger.admin.getManagedKeys(CUST, NS)).map((k) => k.state),
      ['INACTIVE', 'ACTIVE'],
    );
    await ledger.close();
  });

  it('refresh follows the provider, goes on past a failing key and reports the first failure at the end', async () => {
    const { provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    provider.setKey(scope, 'k2');
    await ledger.admin.rotateManagedKey(CUST, NS);
    provider.setKey(scope, 'k3');
    await ledger.admin.rotateManagedKey(CUST, NS);
    provider.setState('k1', 'DISABLED');
    provider.failUnwrapFor.add('k2');
    await assert.rejects(
      () => ledger.admin.refreshManagedKeys(CUST, NS),
      (error: { code?: string; details?: Record<string, unknown> }) => {
        assert.equal(error.code, 'ERR_REFRESH_INCOMPLETE');
        assert.equal(error.details?.failedKeys, 1);
        assert.equal(error.details?.firstCode, 'ERR_PROVIDER_FAILED');
        return true;
      },
    );
    const states = (await ledger.admin.getManagedKeys(CUST, NS)).map((k) => k.state);
    assert.deepEqual(states, ['DISABLED', 'INACTIVE', 'ACTIVE']);
    const history = await ledger.history(CUST, NS);
    assert.deepEqual(
      history.slice(-2).map((h) => h.type),
      ['ManagedKeyRefreshed', 'ManagedKeyRefreshed'],
    );
    await ledger.close();
  });

  it('set-managed-key makes a named key ACTIVE and the previous one INACTIVE', async () => {
    const { provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    provider.setKey(scope, 'k2');
    provider.setKey(scope, 'k1'); // k2 exists in the provider but is not the scope's key
    const result = await ledger.admin.setManagedKey(CUST, NS, provider.metadataFor(scope, 'k2'));
    assert.equal(result.key.metadata, provider.metadataFor(scope, 'k2'));
    assert.deepEqual(
      (await ledger.admin.getManagedKeys(CUST, NS)).map((k) => k.state),
      ['INACTIVE', 'ACTIVE'],
    );
    await ledger.close();
  });

  it('re-enables a DISABLED key as INACTIVE', async () => {
    const { provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    const { key } = await ledger.admin.enableKeyManagement(CUST, NS);
    await ledger.admin.disableManagedKey(CUST, NS, key?.metadataHash ?? '');
    const back = await ledger.admin.enableManagedKey(CUST, NS, key?.metadataHash ?? '');
    assert.equal(back.key.state, 'INACTIVE');
    await ledger.close();
  });

  it('records cache eject and clear on the operations stream', async () => {
    const { provider, ledger, store } = await setup();
    provider.setKey(scope, 'k1');
    const { key } = await ledger.admin.enableKeyManagement(CUST, NS);
    await ledger.admin.ejectManagedKeyDataCacheEntry(CUST, NS, key?.metadataHash);
    await ledger.admin.clearManagedKeyDataCache({ reason: 'incident 42' });
    const ops = await store.readStream(ledger.streamNames.operations);
    assert.deepEqual(
      ops.map((e) => e.type),
      ['CacheEntryEjected', 'CacheCleared'],
    );
    assert.equal(ops[0]?.data.keyId, key?.keyId);
    await ledger.close();
  });

  it('rotateSTK records a new system key once; keys wrapped under the old one stay readable', async () => {
    const store = await newLedgerStore();
    const stk = new ScriptedProvider();
    const provider = new GeneratedKeyProvider({ systemKeys: stk });
    const ledger = await Ledger.open({ store, provider, actor: 'test' });
    await ledger.initialise();
    const { key: before } = await ledger.admin.enableKeyManagement(CUST, NS);
    assert.equal((await ledger.admin.rotateSTK()).changed, false);
    stk.rotateSystemKey('stk-2');
    const change = await ledger.admin.rotateSTK({ reason: 'yearly' });
    assert.equal(change.changed, true);
    assert.equal(change.sequence, 2);
    assert.equal((await ledger.admin.rotateSTK()).changed, false);
    const rotated = await ledger.admin.rotateManagedKey(CUST, NS);
    assert.notEqual(rotated?.key.stkIdentity, before?.stkIdentity);
    assert.equal(rotated?.key.stkIdentity, change.identity);
    // Refresh unwraps every key's stored material, the old one under the old STK.
    const refreshed = await ledger.admin.refreshManagedKeys(CUST, NS);
    assert.deepEqual(
      refreshed.keys.map((k) => k.state),
      ['INACTIVE', 'ACTIVE'],
    );
    assert.equal(ledger.systemKeys().length, 2);
    await ledger.close();
  });

  it('never stores plaintext key bytes', async () => {
    const { provider, ledger, store } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    provider.setKey(scope, 'k2');
    await ledger.admin.rotateManagedKey(CUST, NS);
    const dump = JSON.stringify(await allEvents(store), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    for (const name of ['k1', 'k2']) {
      const bytes = Buffer.from(provider.bytesOf(name) ?? []);
      assert.equal(bytes.length, 32);
      for (const encoding of ['hex', 'base64', 'base64url'] as const) {
        assert.ok(!dump.includes(bytes.toString(encoding)), `${name} bytes appear as ${encoding}`);
      }
    }
    await ledger.close();
  });

  it('re-decides on a lost race: concurrent rotations on one scope leave exactly one ACTIVE key', async () => {
    const store = await newLedgerStore();
    const provider = new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() });
    const admins = await Promise.all([1, 2, 3].map(() => Ledger.open({ store, provider, actor: 'racer' })));
    const [first] = admins;
    assert.ok(first);
    await first.initialise();
    await first.admin.enableKeyManagement(CUST, NS);
    for (const ledger of admins) await ledger.waitForPosition(await store.headPosition());
    // 12 racers on one stream, on every store: over gRPC (esdb) a decision's window is a few round
    // trips wide, which the shared retry policy's backoff scales to (src/journal/retryPolicy.ts).
    const each = 4;
    const results = await Promise.all(
      admins.flatMap((ledger) => Array.from({ length: each }, () => ledger.admin.rotateManagedKey(CUST, NS))),
    );
    assert.equal(results.length, 3 * each);
    for (const ledger of admins) {
      await ledger.waitForPosition(await store.headPosition());
      const keys = await ledger.admin.getManagedKeys(CUST, NS);
      assert.equal(keys.filter((k) => k.state === 'ACTIVE').length, 1);
      assert.equal(keys.length, 3 * each + 1);
    }
    const rotations = (await store.readStream(first.streamNames.scope(scope))).filter(
      (e) => e.type === 'ManagedKeyRotated',
    );
    assert.equal(rotations.length, 3 * each);
    await Promise.all(admins.map((l) => l.close()));
  });
});

describe('KeymetaAdmin bad input and faults: error code, nothing appended', () => {
  it('rejects an invalid base64 custodian', async () => {
    const { ledger, store } = await setup();
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement('not base64!', NS),
      'ERR_INVALID_CUSTODIAN',
    );
    await ledger.close();
  });

  it('rejects an empty custodian', async () => {
    const { ledger, store } = await setup();
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement('', NS),
      'ERR_INVALID_CUSTODIAN',
    );
    await ledger.close();
  });

  it('rejects a custodian over 255 bytes', async () => {
    const { ledger, store } = await setup();
    const big = Buffer.alloc(256, 1).toString('base64');
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(big, NS),
      'ERR_INVALID_CUSTODIAN',
    );
    await ledger.close();
  });

  it('rejects a namespace over 255 bytes', async () => {
    const { ledger, store } = await setup();
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(CUST, 'é'.repeat(128)),
      'ERR_INVALID_NAMESPACE',
    );
    await ledger.close();
  });

  it('rejects an unknown metadata hash', async () => {
    const { ledger, store, provider } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.disableManagedKey(CUST, NS, 'A'.repeat(43)),
      'ERR_KEY_NOT_FOUND',
    );
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.disableManagedKey(CUST, NS, 'short'),
      'ERR_INVALID_METADATA',
    );
    await ledger.close();
  });

  it('rejects disabling an already disabled key', async () => {
    const { ledger, store, provider } = await setup();
    provider.setKey(scope, 'k1');
    const { key } = await ledger.admin.enableKeyManagement(CUST, NS);
    await ledger.admin.disableManagedKey(CUST, NS, key?.metadataHash ?? '');
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.disableManagedKey(CUST, NS, key?.metadataHash ?? ''),
      'ERR_KEY_ALREADY_DISABLED',
    );
    await ledger.close();
  });

  it('rejects rotating a scope that was never enabled', async () => {
    const { ledger, store, provider } = await setup();
    provider.setKey(scope, 'k1');
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.rotateManagedKey(CUST, NS),
      'ERR_KEY_MANAGEMENT_NOT_ENABLED',
    );
    await ledger.close();
  });

  it('rejects a provider answer for another scope', async () => {
    const { ledger, store, provider } = await setup();
    const other = keyScope(CUST, 'invoices');
    provider.setKey(other, 'k-other');
    const answer = await provider.getManagedKey(other);
    provider.override = () => answer;
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(CUST, NS),
      'ERR_PROVIDER_WRONG_SCOPE',
    );
    await ledger.close();
  });

  it('rejects an INACTIVE key on enable ("expected ACTIVE")', async () => {
    const { ledger, store, provider } = await setup();
    provider.setKey(scope, 'k1', 'INACTIVE');
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(CUST, NS),
      'ERR_PROVIDER_KEY_NOT_ACTIVE',
    );
    await ledger.close();
  });

  it('rejects a provider that returns null on enable', async () => {
    const { ledger, store, provider } = await setup();
    provider.override = () => null;
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(CUST, NS),
      'ERR_PROVIDER_NO_KEY',
    );
    await ledger.close();
  });

  it('rejects a provider answer with a short key', async () => {
    const { ledger, store, provider } = await setup();
    provider.setKey(scope, 'k1');
    const good = await provider.getManagedKey(scope);
    const { SecretBytes } = await import('../../src/secrets/secretBytes.js');
    provider.override = () => (good ? { ...good, key: SecretBytes.adopt(new Uint8Array(16)) } : null);
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(CUST, NS),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
    await ledger.close();
  });

  it('rejects a system key offered as a data key, on enable and on set-managed-key', async () => {
    const { ledger, store, provider } = await setup();
    provider.reuseSystemKeyAs('stk-as-dek', 'stk-1');
    provider.setKey(scope, 'stk-as-dek');
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(CUST, NS),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.setManagedKey(CUST, NS, provider.metadataFor(scope, 'stk-as-dek')),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
    await ledger.close();
  });

  it('refuses operations on a ledger that was never initialised', async () => {
    const store = await newLedgerStore();
    const provider = new ScriptedProvider();
    provider.setKey(scope, 'k1');
    const ledger = await Ledger.open({ store, provider });
    await rejectsWithNothingWritten(
      store,
      () => ledger.admin.enableKeyManagement(CUST, NS),
      'ERR_LEDGER_NOT_INITIALISED',
    );
    await ledger.initialise();
    await rejectsWithNothingWritten(store, () => ledger.initialise(), 'ERR_LEDGER_ALREADY_INITIALISED');
    await ledger.close();
  });
});
