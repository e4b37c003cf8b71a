import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { VerifyReport } from '../../src/audit/verifyReport.js';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { keyScope } from '../../src/domain/identities.js';
import { streamNames } from '../../src/journal/streamNames.js';
import type { KeyInfo } from '../../src/ledger/keyInfo.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import { appendForgedEvent, deleteStreamRows } from '../helpers/tamperSqlite.js';

/**
 * Finding 3 of issue 11: a missing material stream is excused only by a destruction in that key's
 * own scope stream, covered by a MACed checkpoint, whose receipt matches what the ledger knew
 * (src/audit/destructionReceipts.ts). Each attack deletes a live key's material in the sqlite file
 * and forges a chained receipt for it.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const NAMES = streamNames('kl-');
const ORDERS = NAMES.scope(keyScope(CUST, 'orders'));
const LATER = NAMES.scope(keyScope(CUST, 'later'));

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-receipts-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * orders: k0 then k1 by rotation (k0 INACTIVE); billing; a checkpoint; then `later` (uncovered).
 * Returns the file (closed) and the INACTIVE key, whose material the attacker deletes, and the
 * newest checkpoint as an anchor kept elsewhere.
 */
async function builtFile() {
  const path = join(dir, `ledger-${++files}.db`);
  const stks = new ScriptedProvider();
  const store = SqliteEventStore.open(path);
  const ledger = await Ledger.open({
    store,
    provider: new GeneratedKeyProvider({ systemKeys: stks }),
    actor: 'test',
    checkpointEvery: 0,
    resolver: { dynamicLookup: false },
  });
  await ledger.initialise();
  await ledger.admin.enableKeyManagement(CUST, 'orders');
  await ledger.admin.rotateManagedKey(CUST, 'orders');
  await ledger.admin.enableKeyManagement(CUST, 'billing');
  await ledger.checkpoint();
  await ledger.admin.enableKeyManagement(CUST, 'later');
  const victim = (await ledger.admin.getManagedKeys(CUST, 'orders')).find((k) => k.state === 'INACTIVE');
  assert.ok(victim !== undefined);
  const anchor = (await ledger.verify()).lastCheckpoint;
  assert.ok(anchor !== null);
  await ledger.close();
  await store.close();
  return { path, stks, victim, anchor: { revision: anchor.revision, hash: anchor.hash } };
}

/** A receipt as crypto-shredding writes one, for `key`, with a made-up material hash. */
function forgedReceipt(key: KeyInfo, namespace: string) {
  return {
    type: 'ManagedKeyDestroyed',
    data: {
      custodian: CUST,
      namespace,
      keyId: key.keyId,
      metadataHash: key.metadataHash,
      previousState: 'INACTIVE',
      receipt: {
        materialStream: NAMES.material(key.keyId),
        materialEvents: 1,
        materialHash: 'ab'.repeat(32),
        scheduledAt: '2026-01-01T00:00:00.000Z',
        dueAt: '2026-01-01T00:00:00.000Z',
      },
    },
  };
}

async function verifyBoth(
  path: string,
  stks: ScriptedProvider,
  anchor: { revision: bigint; hash: string },
): Promise<VerifyReport[]> {
  const store = SqliteEventStore.open(path);
  try {
    const provider = new GeneratedKeyProvider({ systemKeys: stks });
    return [await verifyStore(store, { provider }), await verifyStore(store, { provider, anchor })];
  } finally {
    await store.close();
  }
}

function kinds(report: VerifyReport): [string, string][] {
  return report.problems.map((p) => [p.kind, p.stream]);
}

describe('destruction receipts excuse only their own key (issue 11, finding 3)', () => {
  it('a forged receipt in the key’s own scope stream, after the last checkpoint: receipt-mismatch (also with --anchor)', async () => {
    const { path, stks, victim, anchor } = await builtFile();
    const material = NAMES.material(victim.keyId);
    deleteStreamRows(path, material);
    appendForgedEvent(path, ORDERS, forgedReceipt(victim, 'orders'));
    for (const report of await verifyBoth(path, stks, anchor)) {
      assert.deepEqual(kinds(report), [['receipt-mismatch', material]], report.firstProblem?.message);
      assert.equal(report.destroyedStreams, 0);
    }
  });

  it('a forged receipt for the key in another scope’s stream: reported there, and the material loss too', async () => {
    const { path, stks, victim, anchor } = await builtFile();
    const material = NAMES.material(victim.keyId);
    deleteStreamRows(path, material);
    appendForgedEvent(path, LATER, forgedReceipt(victim, 'later'));
    for (const report of await verifyBoth(path, stks, anchor)) {
      assert.deepEqual(
        kinds(report).sort(),
        [
          ['receipt-mismatch', LATER],
          ['truncated', material],
        ].sort(),
        report.firstProblem?.message,
      );
    }
  });

  it('a genuine destruction is covered by the checkpoint it writes, and excuses its material', async () => {
    const path = join(dir, `genuine-${++files}.db`);
    const stks = new ScriptedProvider();
    const store = SqliteEventStore.open(path);
    const ledger = await Ledger.open({
      store,
      provider: new GeneratedKeyProvider({ systemKeys: stks }),
      actor: 'test',
      checkpointEvery: 0,
      resolver: { dynamicLookup: false },
    });
    try {
      await ledger.initialise();
      await ledger.admin.enableKeyManagement(CUST, 'orders');
      await ledger.admin.rotateManagedKey(CUST, 'orders');
      assert.notEqual(await ledger.checkpoint(), null);
      const [old] = (await ledger.admin.getManagedKeys(CUST, 'orders')).filter((k) => k.state === 'INACTIVE');
      assert.ok(old !== undefined);
      await ledger.destruction.scheduleKeyDestruction(CUST, 'orders', old.metadataHash, { graceMs: 0 });
      const before = (await ledger.verify()).checkpointsChecked;
      assert.equal((await ledger.destruction.destroyDueKeys()).destroyed.length, 1);
      const report = await ledger.verify();
      assert.equal(report.ok, true, report.firstProblem?.message);
      assert.equal(report.checkpointsChecked, before + 1, 'the destruction wrote a checkpoint');
      assert.equal(report.destroyedStreams, 1);
    } finally {
      await ledger.close();
      await store.close();
    }
  });
});
