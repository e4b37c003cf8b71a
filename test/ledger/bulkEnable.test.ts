import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * Bulk onboarding (admin.enableKeyManagementMany) on sqlite, where the store commits the appends
 * of one event-loop turn in one transaction (group commit): every scope ends enabled exactly as a
 * one-by-one enable leaves it, and appends grouped together still fail or succeed alone.
 */

const dir = mkdtempSync(join(tmpdir(), 'keyledger-bulk-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let count = 0;

async function open() {
  const store = SqliteEventStore.open(join(dir, `ledger-${++count}.db`));
  const ledger = await Ledger.open({
    store,
    provider: new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() }),
    actor: 'bulk',
    checkpointEvery: 0,
  });
  await ledger.initialise();
  return { store, ledger };
}

const custodian = (i: number) => Buffer.from(`tenant-${i}`).toString('base64');

describe('bulk enable', () => {
  it('enables every scope, results in order; again, it writes nothing', async () => {
    const { store, ledger } = await open();
    try {
      const scopes = Array.from({ length: 200 }, (_, i) => ({
        custodian: custodian(i),
        namespace: 'orders',
      }));
      const results = await ledger.admin.enableKeyManagementMany(scopes, {
        concurrency: 32,
        reason: 'onboarding',
      });
      assert.equal(results.length, 200);
      for (const [i, r] of results.entries()) {
        assert.equal(r.marker, 'ACTIVE');
        assert.equal(r.key?.custodian, custodian(i));
      }
      const listed = ledger.admin.listScopes();
      assert.equal(listed.length, 200);
      // Each scope's stream holds exactly one lifecycle event: nothing was decided twice.
      for (const s of scopes.slice(0, 20))
        assert.equal(
          (await store.readStream(ledger.streamNames.scope(keyScope(s.custodian, s.namespace)))).length,
          1,
        );
      const head = await store.headPosition();
      const again = await ledger.admin.enableKeyManagementMany(scopes);
      assert.ok(again.every((r) => r.position === null));
      assert.equal(await store.headPosition(), head);
    } finally {
      await ledger.close();
      await store.close();
    }
  });

  it('refuses a bad concurrency before writing anything', async () => {
    const { store, ledger } = await open();
    try {
      const head = await store.headPosition();
      await assert.rejects(
        ledger.admin.enableKeyManagementMany([{ custodian: custodian(1) }], { concurrency: 0 }),
        TypeError,
      );
      assert.equal(await store.headPosition(), head);
    } finally {
      await ledger.close();
      await store.close();
    }
  });

  it('grouped appends fail alone: two at one expected revision, one conflicts, the other is written', async () => {
    const store = SqliteEventStore.open(join(dir, `ledger-${++count}.db`));
    try {
      const event = (id: string) => ({ eventId: id, type: 'T', data: {}, metadata: {} });
      const [a, b, c] = await Promise.allSettled([
        store.append('s-1', [event('00000000-0000-4000-8000-000000000001')], 'no_stream'),
        store.append('s-1', [event('00000000-0000-4000-8000-000000000002')], 'no_stream'),
        store.append('s-2', [event('00000000-0000-4000-8000-000000000003')], 'no_stream'),
      ]);
      assert.equal(a?.status, 'fulfilled');
      assert.equal(b?.status, 'rejected');
      assert.equal((b as PromiseRejectedResult).reason.code, 'ERR_VERSION_CONFLICT');
      assert.equal(c?.status, 'fulfilled');
      assert.equal((await store.readStream('s-1')).length, 1);
      assert.equal((await store.readStream('s-2')).length, 1);
    } finally {
      await store.close();
    }
  });
});
