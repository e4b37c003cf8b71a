import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = 'dGVuYW50LTE='; // "tenant-1"
const scope = keyScope(CUST, 'orders');

async function setup() {
  const store = new MemoryEventStore();
  const provider = new ScriptedProvider();
  const ledger = await Ledger.open({ store, provider, actor: 'test' });
  await ledger.initialise();
  return { store, provider, ledger };
}

describe('KeymetaAdmin on the memory store', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    env = await setup();
  });
  after(async () => {
    await env?.ledger.close();
  });

  it('enables, rotates, disables and shows keys without bytes', async () => {
    const { provider, ledger } = env;
    provider.setKey(scope, 'k1');
    const enabled = await ledger.admin.enableKeyManagement(CUST, 'orders', { reason: 'onboarding' });
    assert.equal(enabled.marker, 'ACTIVE');
    assert.equal(enabled.key?.state, 'ACTIVE');
    assert.match(enabled.key?.checksum ?? '', /^[0-9a-f]{16}$/);

    provider.setKey(scope, 'k2');
    const rotated = await ledger.admin.rotateManagedKey(CUST, 'orders');
    assert.ok(rotated);
    const keys = await ledger.admin.getManagedKeys(CUST, 'orders');
    assert.deepEqual(
      keys.map((k) => k.state),
      ['INACTIVE', 'ACTIVE'],
    );
    await ledger.admin.disableManagedKey(CUST, 'orders', keys[0]?.metadataHash ?? '');
    const after = await ledger.admin.getManagedKeys(CUST, 'orders');
    assert.deepEqual(
      after.map((k) => k.state),
      ['DISABLED', 'ACTIVE'],
    );
    const history = await ledger.history(CUST, 'orders');
    assert.deepEqual(
      history.map((h) => h.type),
      ['KeyManagementEnabled', 'ManagedKeyRotated', 'ManagedKeyDisabled'],
    );
    assert.equal(history[0]?.reason, 'onboarding');
    assert.equal(history[0]?.actor, 'test');
  });
});
