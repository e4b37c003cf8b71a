import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { verifyAuditFile } from '../../src/audit/verifyAuditFile.js';
import { parseLedgerEvent } from '../../src/domain/events.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { rejectsWithCode } from '../contract/keyProvider.contract.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * destroy-stk through the ledger: refused (nothing destroyed, nothing written) unless the system key
 * is retired; otherwise the provider destroys it first and SystemKeyDestroyed records who, why and
 * which key; a re-run writes nothing; a provider failing to destroy leaves nothing recorded; and
 * verify, the audit export and its offline check accept the new event.
 */

const dir = mkdtempSync(join(tmpdir(), 'keyledger-destroy-stk-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A scripted provider whose next `failDestroys` destroys fail, as a token gone mid-command. */
class DestroyingProvider extends ScriptedProvider {
  failDestroys = 0;

  override async destroySystemKey(metadata: string): Promise<void> {
    if (this.failDestroys > 0) {
      this.failDestroys--;
      throw new Error('token went away');
    }
    return super.destroySystemKey(metadata);
  }
}

async function retiredSetup() {
  const store = new MemoryEventStore();
  const provider = new DestroyingProvider();
  const ledger = await Ledger.open({ store, provider });
  await ledger.initialise();
  // A checkpoint MACed under the first system key, which is then retired and destroyed.
  await ledger.checkpoint();
  const first = ledger.systemKeys()[0]?.identity ?? '';
  provider.rotateSystemKey('stk-2');
  await ledger.admin.rotateSTK();
  const second = ledger.systemKeys()[1]?.identity ?? '';
  return { store, provider, ledger, first, second };
}

describe('destroy-stk records SystemKeyDestroyed', () => {
  it('refuses a key not retired, unknown or malformed: nothing destroyed, nothing written', async () => {
    const { store, provider, ledger, first, second } = await retiredSetup();
    try {
      const head = await store.headPosition();
      await rejectsWithCode(ledger.rewrap.destroyRetiredSystemKey(first), 'ERR_SYSTEM_KEY_NOT_RETIRED');
      await rejectsWithCode(ledger.rewrap.destroyRetiredSystemKey(second), 'ERR_SYSTEM_KEY_NOT_RETIRED');
      await rejectsWithCode(
        ledger.rewrap.destroyRetiredSystemKey('0000000000000000'),
        'ERR_SYSTEM_KEY_NOT_FOUND',
      );
      await rejectsWithCode(ledger.rewrap.destroyRetiredSystemKey('NOT-HEX'), 'ERR_INVALID_ARGUMENT');
      assert.equal(await store.headPosition(), head, 'nothing was written');
      // The first system key is still in the provider.
      const metadata = ledger.systemKeys()[0]?.metadata ?? '';
      assert.equal((await provider.unwrapSystemKey(metadata)).identity, first);
    } finally {
      await ledger.close();
    }
  });

  it('a provider failing to destroy: nothing recorded; the retry destroys and records', async () => {
    const { store, provider, ledger, first } = await retiredSetup();
    try {
      await ledger.rewrap.retireSystemKey(first);
      const head = await store.headPosition();
      provider.failDestroys = 1;
      await assert.rejects(ledger.rewrap.destroyRetiredSystemKey(first), /token went away/);
      assert.equal(await store.headPosition(), head, 'nothing was written');
      const done = await ledger.rewrap.destroyRetiredSystemKey(first, { actor: 'ops', reason: 'retry' });
      assert.equal(done.changed, true);
    } finally {
      await ledger.close();
    }
  });

  it('destroys a retired key, records actor, reason and identity; a re-run writes nothing; verify and the export accept it', async () => {
    const { store, provider, ledger, first } = await retiredSetup();
    try {
      await ledger.rewrap.retireSystemKey(first);
      const metadata = ledger.systemKeys()[0]?.metadata ?? '';
      const result = await ledger.rewrap.destroyRetiredSystemKey(first, {
        actor: 'alice',
        reason: 'token clean-up',
      });
      assert.deepEqual([result.identity, result.sequence, result.changed], [first, 1, true]);
      await assert.rejects(provider.unwrapSystemKey(metadata), 'the key is gone from the provider');

      const events = (await store.readStream(ledger.streamNames.system)).map(parseLedgerEvent);
      const last = events.at(-1);
      assert.equal(last?.type, 'SystemKeyDestroyed');
      assert.deepEqual(last?.data, { identity: first, sequence: 1, metadata });
      assert.deepEqual([last?.meta.actor, last?.meta.reason], ['alice', 'token clean-up']);
      assert.equal(last?.position, result.position);
      assert.notEqual(ledger.systemKeys()[0]?.destroyedAt, null);

      const head = await store.headPosition();
      const again = await ledger.rewrap.destroyRetiredSystemKey(first);
      assert.deepEqual([again.changed, again.position], [false, null]);
      assert.equal(await store.headPosition(), head, 'a re-run writes nothing');

      await ledger.checkpoint();
      const report = await ledger.verify();
      assert.equal(report.ok, true, JSON.stringify(report.problems ?? report));
      assert.ok(report.macsUnavailable >= 1, 'the checkpoint under the destroyed key is unavailable');

      const file = join(dir, 'export.jsonl');
      const out = createWriteStream(file);
      await ledger.exportAudit(out);
      out.end();
      await finished(out);
      // The file's events parse and chain; MACs with a real token: test/ledger/pkcs11Ledger.test.ts.
      const offline = await verifyAuditFile(file);
      assert.equal(offline.ok, true);
    } finally {
      await ledger.close();
    }
  });
});
