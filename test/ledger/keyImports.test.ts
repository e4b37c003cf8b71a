import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { formatScope, keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const T1 = Buffer.from('tenant-1').toString('base64');
const orders = keyScope(T1, 'orders');
const billing = keyScope(T1, 'billing');
/** Where the scripted provider keeps the old deployment's keys (any scope: the alias names the bytes). */
const legacy = keyScope(T1, 'legacy');

async function setup() {
  const store = new MemoryEventStore();
  const provider = new ScriptedProvider();
  const ledger = await Ledger.open({ store, provider, actor: 'tester', checkpointEvery: 0 });
  await ledger.initialise();
  provider.setKey(legacy, 'master');
  provider.setKey(legacy, 'table-orders');
  return { store, provider, ledger, [Symbol.asyncDispose]: () => ledger.close() };
}

describe('import-managed-key', () => {
  it('ACTIVE: the scope is enabled with it; ManagedKeyImported names its origin (alias, checksum), never bytes', async () => {
    await using t = await setup();
    const r = await t.ledger.imports.importManagedKey(T1, 'orders', 'table-orders', 'ACTIVE', {
      actor: 'alice',
      reason: 'adopt the old per-table key',
    });
    assert.equal(r.key.state, 'ACTIVE');
    const status = await t.ledger.admin.getScopeStatus(T1, 'orders');
    assert.equal(status.marker, 'ACTIVE');
    const [entry] = (await t.ledger.history(T1, 'orders')).filter((e) => e.type === 'ManagedKeyImported');
    assert.equal(entry?.actor, 'alice');
    assert.equal(entry?.reason, 'adopt the old per-table key');
    const events = await t.store.readStream(t.ledger.streamNames.scope(orders));
    const data = events.at(-1)?.data as { origin: { alias: string; checksum: string } };
    assert.deepEqual(data.origin, { alias: 'table-orders', checksum: r.key.checksum });
    const bytes = Buffer.from(t.provider.bytesOf('table-orders') ?? []);
    for await (const e of t.store.readAll({})) {
      assert.ok(!JSON.stringify(e.data).includes(bytes.toString('base64')), 'no key bytes in any event');
    }
    // It encrypts: it is the scope's ACTIVE key.
    const ct = await t.ledger.envelope.encrypt(Buffer.from('x'), { custodian: T1, namespaces: ['orders'] });
    assert.equal((await t.ledger.envelope.decrypt(ct)).toString(), 'x');
  });

  it('INACTIVE: decrypt only, next to the ACTIVE key; importing it again in that state writes nothing', async () => {
    await using t = await setup();
    t.provider.setKey(orders, 'orders-1');
    await t.ledger.admin.enableKeyManagement(T1, 'orders');
    const r = await t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'INACTIVE');
    assert.equal(r.key.state, 'INACTIVE');
    assert.deepEqual(
      (await t.ledger.admin.getManagedKeys(T1, 'orders')).map((k) => k.state),
      ['ACTIVE', 'INACTIVE'],
    );
    const head = await t.store.headPosition();
    const again = await t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'INACTIVE');
    assert.equal(again.position, null);
    assert.equal(await t.store.headPosition(), head);
  });

  it('a key known under another scope is refused with ERR_KEY_IN_OTHER_SCOPE; nothing written', async () => {
    await using t = await setup();
    await t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'INACTIVE');
    const head = await t.store.headPosition();
    await assert.rejects(
      t.ledger.imports.importManagedKey(T1, 'billing', 'master', 'INACTIVE'),
      (error: unknown) =>
        isKeyledgerError(error, 'ERR_KEY_IN_OTHER_SCOPE') &&
        error.details.otherScope === formatScope(orders) &&
        error.details.scope === formatScope(billing),
    );
    assert.equal(await t.store.headPosition(), head);
    assert.equal((await t.ledger.admin.getScopeStatus(T1, 'billing')).keys.length, 0);
  });

  it('an alias the provider has no key for, or a bad alias: refused, nothing written', async () => {
    await using t = await setup();
    const head = await t.store.headPosition();
    await assert.rejects(
      t.ledger.imports.importManagedKey(T1, 'orders', 'no-such-alias', 'ACTIVE'),
      (error: unknown) => isKeyledgerError(error),
    );
    await assert.rejects(
      t.ledger.imports.importManagedKey(T1, 'orders', 'has space', 'ACTIVE'),
      (error: unknown) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT'),
    );
    assert.equal(await t.store.headPosition(), head);
  });
});
