import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import type { KeyInfo } from '../../src/ledger/keyInfo.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore, Snapshot } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * A DESTROYED key's stkIdentity is the same in every view of the ledger: the one that followed the
 * events live (and every snapshot taken from it) and the one rebuilt from event 1 after the
 * destruction deleted the material stream. A rewrap moves a key's identity with a
 * KeyMaterialWrapped event; that event goes with the stream, so the identity must come from the
 * ManagedKeyDestroyed event itself (found by test/reliability/crashSafety.test.ts).
 */

const CUST = Buffer.from('tenant-stk').toString('base64');
const NS = 'orders';
const scope = keyScope(CUST, NS);

/** The store as a ledger that never saw a snapshot: its projection is rebuilt from event 1. */
class NoSnapshots extends ForwardingEventStore {
  override async loadSnapshot(): Promise<Snapshot | null> {
    return null;
  }
  override async saveSnapshot(): Promise<void> {}
}

const dir = mkdtempSync(join(tmpdir(), 'keyledger-destroyed-stk-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const STORES: Record<string, () => EventStore> = {
  memory: () => new MemoryEventStore(),
  sqlite: () => SqliteEventStore.open(join(dir, 'ledger.db'), { pollIntervalMs: 5 }),
};

for (const [kind, makeStore] of Object.entries(STORES)) {
  describe(`a DESTROYED key's stkIdentity on ${kind}`, () => {
    it('is the same in the live view, a resumed one and one rebuilt from event 1', async () => {
      const store = makeStore();
      const provider = new ScriptedProvider();
      const ledgers: Ledger[] = [];
      const open = async (on: EventStore) => {
        const ledger = await Ledger.open({ store: on, provider, actor: 'test', destroyGracePeriodMs: 0 });
        ledgers.push(ledger);
        return ledger;
      };
      try {
        // Given k1 (INACTIVE after a rotation) whose material a rewrap moved under a newer system key
        const live = await open(store);
        await live.initialise();
        provider.setKey(scope, 'k1');
        const k1 = (await live.admin.enableKeyManagement(CUST, NS)).key as KeyInfo;
        provider.setKey(scope, 'k2');
        await live.admin.rotateManagedKey(CUST, NS);
        provider.rotateSystemKey('stk-2');
        assert.equal((await live.admin.rotateSTK()).changed, true);
        assert.equal((await live.rewrap.start()).status, 'finished');
        const identityOf = async (ledger: Ledger) =>
          (await ledger.admin.getManagedKeys(CUST, NS)).find((k) => k.keyId === k1.keyId)?.stkIdentity;
        const moved = await identityOf(live);
        assert.notEqual(moved, k1.stkIdentity, 'the rewrap moved k1 under the new system key');

        // When k1 is destroyed (its material stream, rewrapped copy included, deleted)
        await live.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
        assert.equal((await live.destruction.destroyDueKeys()).destroyed.length, 1);

        // Then the live view, a ledger resumed from the store and one rebuilt from event 1 agree
        const head = await store.headPosition();
        const resumed = await open(store);
        const rebuilt = await open(new NoSnapshots(store));
        await resumed.waitForPosition(head);
        await rebuilt.waitForPosition(head);
        const views = [await identityOf(live), await identityOf(resumed), await identityOf(rebuilt)];
        assert.deepEqual(views, [moved, moved, moved], 'live, resumed, rebuilt');
        const key = (await rebuilt.admin.getManagedKeys(CUST, NS)).find((k) => k.keyId === k1.keyId);
        assert.equal(key?.state, 'DESTROYED');
      } finally {
        for (const ledger of ledgers) await ledger.close();
        await store.close();
      }
    });
  });
}
