import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { formatScope, keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
} from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { startEsdbTestServer } from '../esdb/esdbTestServer.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * A key never serves two scopes, under concurrency (src/domain/decideKeyClaim.ts): the claim
 * stream decides a race between two imports of one key, on every store adapter (the store's
 * expected revision "no stream" is what decides, and the contract suites hold every adapter to it).
 */

const T1 = Buffer.from('tenant-1').toString('base64');
const orders = keyScope(T1, 'orders');
const billing = keyScope(T1, 'billing');
const legacy = keyScope(T1, 'legacy');

const dir = mkdtempSync(join(tmpdir(), 'keyledger-claims-'));
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0)) await close();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
const adapters: Record<string, () => Promise<EventStore>> = {
  memory: async () => new MemoryEventStore(),
  sqlite: async () => {
    const store = SqliteEventStore.open(join(dir, `ledger-${++files}.db`), { pollIntervalMs: 5 });
    closers.push(() => store.close());
    return store;
  },
  esdb: async () => {
    const server = await startEsdbTestServer();
    const store = EsdbEventStore.open(server.connectionString);
    closers.push(async () => {
      await store.close();
      await server.close();
    });
    return store;
  },
};

/** A store that "crashes" (throws) on the next append to a scope stream: what a kill between the claim and the import leaves. */
class CrashBeforeScopeAppend extends ForwardingEventStore {
  armed = false;
  override append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    if (this.armed && stream.includes('scope-')) {
      this.armed = false;
      return Promise.reject(new Error('killed'));
    }
    return super.append(stream, events, expected);
  }
}

async function setup(inner: EventStore) {
  const store = new CrashBeforeScopeAppend(inner);
  const provider = new ScriptedProvider();
  const ledger = await Ledger.open({ store, provider, actor: 'tester', checkpointEvery: 0 });
  await ledger.initialise();
  provider.setKey(legacy, 'master');
  return { store, provider, ledger, [Symbol.asyncDispose]: () => ledger.close() };
}

const refusedFor = (scope: string, other: string) => (error: unknown) =>
  isKeyledgerError(error, 'ERR_KEY_IN_OTHER_SCOPE') &&
  error.details.scope === scope &&
  error.details.otherScope === other;

for (const [name, open] of Object.entries(adapters)) {
  describe(`key claims on ${name}`, () => {
    it('an import claims the key first (stream <prefix>keyclaim-<checksum>), then imports; no key bytes', async () => {
      await using t = await setup(await open());
      const r = await t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'INACTIVE');
      const claim = await t.store.readStream(t.ledger.streamNames.keyClaim(r.key.checksum));
      assert.equal(claim.length, 1);
      assert.equal(claim[0]?.type, 'ManagedKeyClaimed');
      assert.deepEqual(claim[0]?.data, { ...orders, keyId: r.key.keyId, checksum: r.key.checksum });
      const imported = (await t.store.readStream(t.ledger.streamNames.scope(orders))).at(-1);
      assert.equal(imported?.type, 'ManagedKeyImported');
      assert.ok((claim[0]?.position ?? 0n) < (imported?.position ?? 0n), 'the claim comes first');
      const bytes = Buffer.from(t.provider.bytesOf('master') ?? []);
      for (const encoding of ['base64', 'hex', 'base64url'] as const) {
        assert.ok(!JSON.stringify(claim.map((e) => e.data)).includes(bytes.toString(encoding)));
      }
      assert.equal((await t.ledger.verify()).ok, true);
    });

    it('two imports of one key into two scopes at once: exactly one stands, the other is refused naming it', async () => {
      await using t = await setup(await open());
      for (let round = 0; round < 5; round++) {
        const alias = `key-${round}`;
        t.provider.setKey(legacy, alias);
        const head = await t.store.headPosition();
        const outcomes = await Promise.allSettled([
          t.ledger.imports.importManagedKey(T1, 'orders', alias, 'INACTIVE'),
          t.ledger.imports.importManagedKey(T1, 'billing', alias, 'INACTIVE'),
        ]);
        const won = outcomes.findIndex((o) => o.status === 'fulfilled');
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, `round ${round}`);
        const [winner, loser] = won === 0 ? [orders, billing] : [billing, orders];
        const lost = outcomes[1 - won];
        assert.ok(lost?.status === 'rejected');
        assert.ok(refusedFor(formatScope(loser), formatScope(winner))(lost.reason), String(lost.reason));
        // Nothing half-written: one claim (the winner's), the key only in the winner's scope.
        const checksum = outcomes[won]?.status === 'fulfilled' ? outcomes[won].value.key.checksum : '';
        const claim = await t.store.readStream(t.ledger.streamNames.keyClaim(checksum));
        assert.deepEqual(
          claim.map((e) => e.data),
          [
            {
              ...winner,
              keyId: (outcomes[won] as PromiseFulfilledResult<{ key: { keyId: string } }>).value.key.keyId,
              checksum,
            },
          ],
        );
        const loserKeys = (await t.ledger.admin.getManagedKeys(loser.custodian, loser.namespace)).filter(
          (k) => k.checksum === checksum,
        );
        assert.equal(loserKeys.length, 0, `round ${round}: the loser's scope has the key`);
        let written = 0;
        for await (const e of t.store.readAll({ after: head })) {
          if (e.streamName === t.ledger.streamNames.scope(loser)) assert.fail(`the loser wrote ${e.type}`);
          written++;
        }
        // The winner's claim, material and import event.
        assert.equal(written, 3, `round ${round}`);
      }
      assert.equal((await t.ledger.verify()).ok, true);
    });

    it('a crash between claim and import: the retry of the same import finishes it; another scope is refused meanwhile', async () => {
      await using t = await setup(await open());
      t.store.armed = true;
      await assert.rejects(t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'ACTIVE'), /killed/);
      // The documented resumable state: the claim stands, no import event.
      assert.equal((await t.ledger.admin.getManagedKeys(T1, 'orders')).length, 0);
      const head = await t.store.headPosition();
      await assert.rejects(
        t.ledger.imports.importManagedKey(T1, 'billing', 'master', 'ACTIVE'),
        refusedFor(formatScope(billing), formatScope(orders)),
      );
      assert.equal(await t.store.headPosition(), head, 'a refusal writes nothing');
      const r = await t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'ACTIVE');
      assert.equal(r.key.state, 'ACTIVE');
      assert.notEqual(r.position, null);
      const claim = await t.store.readStream(t.ledger.streamNames.keyClaim(r.key.checksum));
      assert.equal(claim.length, 1, 'the retry found its claim and wrote no second one');
      assert.equal((await t.ledger.admin.getScopeStatus(T1, 'orders')).marker, 'ACTIVE');
      assert.equal((await t.ledger.verify()).ok, true);
    });

    it('keys without a claim stay covered: a key the provider gave a scope (enable) is refused elsewhere', async () => {
      await using t = await setup(await open());
      // ScriptedProvider names bytes by alias: orders' generated-by-provider key is 'orders-1'.
      t.provider.setKey(orders, 'orders-1');
      await t.ledger.admin.enableKeyManagement(T1, 'orders');
      const head = await t.store.headPosition();
      await assert.rejects(
        t.ledger.imports.importManagedKey(T1, 'billing', 'orders-1', 'INACTIVE'),
        refusedFor(formatScope(billing), formatScope(orders)),
      );
      assert.equal(await t.store.headPosition(), head);
    });

    it('unclaimed keys that arrive after the first import (the lookup is kept up to date) stay covered', async () => {
      await using t = await setup(await open());
      await t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'INACTIVE');
      t.provider.setKey(billing, 'billing-1');
      await t.ledger.admin.enableKeyManagement(T1, 'billing');
      t.provider.setKey(billing, 'billing-2');
      await t.ledger.admin.rotateManagedKey(T1, 'billing');
      const head = await t.store.headPosition();
      for (const alias of ['billing-1', 'billing-2']) {
        await assert.rejects(
          t.ledger.imports.importManagedKey(T1, 'orders', alias, 'INACTIVE'),
          refusedFor(formatScope(orders), formatScope(billing)),
        );
      }
      assert.equal(await t.store.headPosition(), head);
    });

    it('a refused import leaves no claim behind (DISABLED scope, ACTIVE asked)', async () => {
      await using t = await setup(await open());
      t.provider.setKey(orders, 'orders-1');
      await t.ledger.admin.enableKeyManagement(T1, 'orders');
      await t.ledger.admin.disableKeyManagement(T1, 'orders');
      const head = await t.store.headPosition();
      await assert.rejects(
        t.ledger.imports.importManagedKey(T1, 'orders', 'master', 'ACTIVE'),
        (error: unknown) => isKeyledgerError(error, 'ERR_KEY_MANAGEMENT_DISABLED'),
      );
      assert.equal(await t.store.headPosition(), head);
      // So the key is still free for another scope.
      const r = await t.ledger.imports.importManagedKey(T1, 'billing', 'master', 'INACTIVE');
      assert.equal(r.key.state, 'INACTIVE');
    });
  });
}
