import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLedgerEvent } from '../../src/domain/events.js';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const scope = keyScope(CUST, NS);

async function setup() {
  const store = new MemoryEventStore();
  const provider = new ScriptedProvider();
  let ms = Date.UTC(2026, 0, 1);
  const now = () => {
    ms += 1000;
    return new Date(ms);
  };
  const ledger = await Ledger.open({ store, provider, actor: 'auditor', now });
  await ledger.initialise();
  return { store, provider, ledger };
}

async function wrappedCiphertexts(store: EventStore): Promise<string[]> {
  const out: string[] = [];
  for await (const recorded of store.readAll()) {
    const event = parseLedgerEvent(recorded);
    if (event.type === 'KeyMaterialWrapped') out.push(event.data.wrapped);
  }
  return out;
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

describe('history', () => {
  it('of a scope: every lifecycle event in order with actor, reason, time, position and change', async () => {
    const { provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS, { reason: 'onboarding' });
    provider.setKey(scope, 'k2');
    await ledger.admin.rotateManagedKey(CUST, NS, { actor: 'rotator', reason: 'yearly' });
    await ledger.admin.disableKeyManagement(CUST, NS);
    const history = await ledger.history(CUST, NS);
    assert.deepEqual(
      history.map((h) => [h.type, h.actor, h.reason]),
      [
        ['KeyManagementEnabled', 'auditor', 'onboarding'],
        ['ManagedKeyRotated', 'rotator', 'yearly'],
        ['KeyManagementDisabled', 'auditor', null],
      ],
    );
    const positions = history.map((h) => h.position);
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
    );
    assert.ok(history.every((h, i) => i === 0 || h.occurredAt > (history[i - 1]?.occurredAt ?? '')));
    assert.deepEqual(history[0]?.marker, { from: null, to: 'ACTIVE' });
    assert.deepEqual(history[2]?.marker, { from: 'ACTIVE', to: 'DISABLED' });
    assert.deepEqual(
      history[2]?.keys.map((k) => [k.from, k.to]),
      [['ACTIVE', 'INACTIVE']],
    );
    assert.ok(history.every((h) => h.material === null));
    await ledger.close();
  });

  it('of a key: the events that changed it or are about it, and the (re)wraps of its material', async () => {
    const { store, provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    const k1 = (await ledger.admin.enableKeyManagement(CUST, NS)).key;
    assert.ok(k1 !== null);
    provider.setKey(scope, 'k2');
    await ledger.admin.rotateManagedKey(CUST, NS);
    const k2 = (await ledger.admin.getManagedKeys(CUST, NS))[1];
    assert.ok(k2 !== undefined);
    await ledger.admin.disableManagedKey(CUST, NS, k2.metadataHash, { reason: 'leaked' });
    // A new system key and a rewrap move both keys' material under it.
    provider.rotateSystemKey('stk-2');
    const stk2 = (await ledger.admin.rotateSTK()).identity;
    await ledger.rewrap.start();

    const history = await ledger.history(CUST, NS, { key: k1.metadataHash });
    assert.deepEqual(
      history.map((h) => h.type),
      ['KeyMaterialWrapped', 'KeyManagementEnabled', 'ManagedKeyRotated', 'KeyMaterialWrapped'],
    );
    assert.ok(
      history.every((h) => h.subject?.keyId === k1.keyId || h.keys.some((k) => k.keyId === k1.keyId)),
      'every entry is about k1 or changed it',
    );
    assert.deepEqual(
      history.map((h) => h.material?.stkIdentity ?? null),
      [k1.stkIdentity, null, null, stk2],
    );
    assert.deepEqual(
      history[2]?.keys.filter((k) => k.keyId === k1.keyId).map((k) => [k.from, k.to]),
      [['ACTIVE', 'INACTIVE']],
    );
    const positions = history.map((h) => h.position);
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
    );

    const second = await ledger.history(CUST, NS, { key: k2.metadataHash });
    assert.deepEqual(
      second.filter((h) => h.material === null).map((h) => [h.type, h.reason]),
      [
        ['ManagedKeyRotated', null],
        ['ManagedKeyDisabled', 'leaked'],
      ],
    );
    // Histories never carry wrapped material, not even as ciphertext.
    const text = JSON.stringify([...history, ...second], (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    for (const wrapped of await wrappedCiphertexts(store)) assert.ok(!text.includes(wrapped));
    await ledger.close();
  });

  it('of a destroyed key: stays readable after its material is deleted, ending in the receipt', async () => {
    const { provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    const k1 = (await ledger.admin.enableKeyManagement(CUST, NS)).key;
    assert.ok(k1 !== null);
    provider.setKey(scope, 'k2');
    await ledger.admin.rotateManagedKey(CUST, NS);
    await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
    await ledger.destruction.destroyDueKeys();
    const history = await ledger.history(CUST, NS, { key: k1.metadataHash });
    assert.deepEqual(
      history.map((h) => h.type),
      ['KeyManagementEnabled', 'ManagedKeyRotated', 'ManagedKeyDestructionScheduled', 'ManagedKeyDestroyed'],
    );
    assert.deepEqual(
      history.at(-1)?.keys.map((k) => [k.from, k.to]),
      [['INACTIVE', 'DESTROYED']],
    );
    await ledger.close();
  });

  it('refuses an unknown scope, an unknown key and malformed input, writing nothing', async () => {
    const { store, provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    const nobody = Buffer.from('nobody').toString('base64');
    await rejectsWithNothingWritten(store, () => ledger.history(nobody, NS), 'ERR_SCOPE_NOT_FOUND');
    await rejectsWithNothingWritten(store, () => ledger.history(CUST, 'returns'), 'ERR_SCOPE_NOT_FOUND');
    await rejectsWithNothingWritten(
      store,
      () => ledger.history(nobody, NS, { key: 'A'.repeat(43) }),
      'ERR_SCOPE_NOT_FOUND',
    );
    await rejectsWithNothingWritten(
      store,
      () => ledger.history(CUST, NS, { key: 'A'.repeat(43) }),
      'ERR_KEY_NOT_FOUND',
    );
    await rejectsWithNothingWritten(
      store,
      () => ledger.history(CUST, NS, { key: 'short' }),
      'ERR_INVALID_METADATA',
    );
    await rejectsWithNothingWritten(store, () => ledger.history('not base64!', NS), 'ERR_INVALID_CUSTODIAN');
    await rejectsWithNothingWritten(store, () => ledger.history(CUST, ''), 'ERR_INVALID_NAMESPACE');
    await ledger.close();
  });

  it('names the unknown key and its scope in the error details', async () => {
    const { provider, ledger } = await setup();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, NS);
    await assert.rejects(ledger.history(CUST, NS, { key: 'B'.repeat(43) }), {
      code: 'ERR_KEY_NOT_FOUND',
      details: { scope: `${CUST}:${NS}`, metadataHash: 'B'.repeat(43) },
    });
    await ledger.close();
  });
});
