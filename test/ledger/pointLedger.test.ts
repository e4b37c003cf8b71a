import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * A point ledger (LedgerOptions.view 'point', what the CLI opens for a one-scope command) reads
 * the system keys and each scope from its own streams: what it answers and decides about a scope
 * must equal what the whole view answers, whatever happened to the scope (rotations, disables, a
 * rewrap under a new system key), and what it writes must reach every other process.
 */

const CUST = Buffer.from('tenant-1').toString('base64');

function opener(store: EventStore, stks: ScriptedProvider) {
  return (view: 'whole' | 'point') =>
    Ledger.open({
      store,
      provider: new GeneratedKeyProvider({ systemKeys: stks }),
      actor: 'test',
      checkpointEvery: 0,
      resolver: { dynamicLookup: false },
      view,
    });
}

/** Holds one read of `stream` back, after reading it, until released: a read that went stale. */
class GatedStore extends MemoryEventStore {
  gate: { readonly stream: string; reached(): void; readonly release: Promise<void> } | null = null;

  override async readStream(stream: string, options?: { readonly fromRevision?: bigint }) {
    const result = await super.readStream(stream, options);
    const gate = this.gate;
    if (gate !== null && gate.stream === stream) {
      this.gate = null;
      gate.reached();
      await gate.release;
    }
    return result;
  }
}

async function setup() {
  const store = new GatedStore();
  const stks = new ScriptedProvider();
  const open = opener(store, stks);
  const whole = await open('whole');
  await whole.initialise();
  for (let i = 0; i < 6; i++) await whole.admin.enableKeyManagement(CUST, `ns-${i}`);
  await whole.admin.rotateManagedKey(CUST, 'ns-1');
  await whole.admin.rotateManagedKey(CUST, 'ns-1');
  const [inactive] = await whole.admin.getManagedKeys(CUST, 'ns-2');
  await whole.admin.rotateManagedKey(CUST, 'ns-2');
  await whole.admin.disableManagedKey(CUST, 'ns-2', inactive?.metadataHash ?? '');
  await whole.admin.disableKeyManagement(CUST, 'ns-3');
  // A rewrap moves every key under a new system key: material events in streams of their own.
  stks.rotateSystemKey('stk-2');
  await whole.admin.rotateSTK();
  assert.equal((await whole.rewrap.start()).status, 'finished');
  return { store, stks, open, whole };
}

describe('a point ledger', () => {
  it('answers every scope as the whole view does, and writes no snapshot', async () => {
    const { store, open, whole } = await setup();
    const snapshot = await store.loadSnapshot(whole.streamNames.keymetaSnapshot);
    const point = await open('point');
    try {
      for (const ns of ['ns-0', 'ns-1', 'ns-2', 'ns-3', 'ns-4', 'never-enabled']) {
        assert.deepEqual(
          await point.admin.getScopeStatus(CUST, ns),
          await whole.admin.getScopeStatus(CUST, ns),
          ns,
        );
      }
      assert.deepEqual(point.systemKeys(), whole.systemKeys());
      assert.equal(point.position, whole.position);
      // What needs every scope is refused, not answered from the scopes loaded so far.
      assert.throws(() => point.admin.listScopes(), TypeError);
      await assert.rejects(point.destruction.destroyDueKeys(), TypeError);
      await point.close();
      assert.deepEqual(await store.loadSnapshot(whole.streamNames.keymetaSnapshot), snapshot);
    } finally {
      await point.close();
      await whole.close();
    }
  });

  it('decides on the scope’s stream: its writes reach the whole view and it sees others’ writes', async () => {
    const { store, open, whole } = await setup();
    const point = await open('point');
    try {
      const rotated = await point.admin.rotateManagedKey(CUST, 'ns-1');
      assert.ok(rotated?.position);
      await whole.waitForPosition(rotated.position);
      assert.deepEqual(
        await whole.admin.getScopeStatus(CUST, 'ns-1'),
        await point.admin.getScopeStatus(CUST, 'ns-1'),
      );
      assert.equal(
        (await point.admin.getManagedKeys(CUST, 'ns-1')).filter((k) => k.state === 'ACTIVE').length,
        1,
      );
      // Another process writes to a scope this one has loaded: applied live, as in the whole view.
      const other = await whole.admin.rotateManagedKey(CUST, 'ns-1');
      assert.ok(other?.position);
      await point.waitForPosition(other.position);
      assert.deepEqual(
        await point.admin.getScopeStatus(CUST, 'ns-1'),
        await whole.admin.getScopeStatus(CUST, 'ns-1'),
      );
      // … and to one it has not loaded yet: read when first asked for.
      const enabled = await whole.admin.enableKeyManagement(CUST, 'ns-new');
      await point.waitForPosition(enabled.position ?? 0n);
      assert.deepEqual(
        await point.admin.getScopeStatus(CUST, 'ns-new'),
        await whole.admin.getScopeStatus(CUST, 'ns-new'),
      );
      // A refused write on a point ledger writes nothing, as on the whole one.
      const head = await store.headPosition();
      await assert.rejects(point.admin.rotateManagedKey(CUST, 'ns-3'), {
        code: 'ERR_KEY_MANAGEMENT_NOT_ENABLED',
      });
      assert.equal(await store.headPosition(), head);
    } finally {
      await point.close();
      await whole.close();
    }
  });

  it('encrypts with a scope’s key and decrypts by key id alone, each from a fresh point ledger', async () => {
    const { open, whole } = await setup();
    await whole.close();
    const writer = await open('point');
    const ciphertext = await writer.envelope.encrypt(Buffer.from('hello'), {
      custodian: CUST,
      namespaces: ['ns-1'],
    });
    await writer.close();
    const reader = await open('point');
    try {
      assert.equal((await reader.envelope.decrypt(ciphertext)).toString(), 'hello');
    } finally {
      await reader.close();
    }
  });

  it('a write that lands while the scope is being read is folded in, not lost', async () => {
    const { store, open, whole } = await setup();
    const point = await open('point');
    try {
      let reached = () => {};
      let release = () => {};
      const readDone = new Promise<void>((resolve) => {
        reached = resolve;
      });
      store.gate = {
        stream: whole.streamNames.scope(keyScope(CUST, 'ns-1')),
        reached: () => reached(),
        release: new Promise<void>((resolve) => {
          release = resolve;
        }),
      };
      const status = point.admin.getScopeStatus(CUST, 'ns-1');
      await readDone;
      // The read has its (now stale) events; another process rotates, and this one applies it.
      const rotated = await whole.admin.rotateManagedKey(CUST, 'ns-1');
      assert.ok(rotated?.position);
      await point.waitForPosition(rotated.position);
      release();
      assert.deepEqual(await status, await whole.admin.getScopeStatus(CUST, 'ns-1'));
      const ciphertext = await point.envelope.encrypt(Buffer.from('x'), {
        custodian: CUST,
        namespaces: ['ns-1'],
      });
      assert.equal((await whole.envelope.decrypt(ciphertext)).toString(), 'x');
    } finally {
      await point.close();
      await whole.close();
    }
  });
});
