import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chainLinkOf } from '../../src/audit/hashChain.js';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { streamNames } from '../../src/journal/streamNames.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import { changeDataByte, deleteStreamRows, editEventData, readRows } from '../helpers/tamperSqlite.js';

/**
 * Finding 2 of issue 11: checkpoints cannot vanish silently. Every event written once a checkpoint
 * exists names the newest checkpoint its writer knew (metadata `checkpoint`, schemaVersion 3), so a
 * deleted or cut checkpoint stream contradicts the events; the checkpointer refuses to vouch for
 * history that contradicts it or whose previous checkpoint does not verify; verify bounds the
 * uncovered tail by the checkpoint interval.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const NAMES = streamNames('kl-');

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-coverage-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function open(store: EventStore, stks: ScriptedProvider, checkpointEvery = 0): Promise<Ledger> {
  return Ledger.open({
    store,
    provider: new GeneratedKeyProvider({ systemKeys: stks }),
    actor: 'test',
    checkpointEvery,
    resolver: { dynamicLookup: false },
  });
}

/** Three scopes, a checkpoint, then two more scopes (events that name the checkpoint). */
async function build(ledger: Ledger): Promise<void> {
  await ledger.initialise();
  for (const ns of ['orders', 'billing', 'users']) await ledger.admin.enableKeyManagement(CUST, ns);
  assert.notEqual(await ledger.checkpoint(), null);
  for (const ns of ['later', 'last']) await ledger.admin.enableKeyManagement(CUST, ns);
}

async function builtFile(): Promise<{ path: string; stks: ScriptedProvider }> {
  const path = join(dir, `ledger-${++files}.db`);
  const stks = new ScriptedProvider();
  const store = SqliteEventStore.open(path);
  const ledger = await open(store, stks);
  await build(ledger);
  await ledger.close();
  await store.close();
  return { path, stks };
}

async function verifyPath(path: string, stks: ScriptedProvider, checkpointEvery?: number) {
  const store = SqliteEventStore.open(path);
  try {
    return await verifyStore(store, {
      provider: new GeneratedKeyProvider({ systemKeys: stks }),
      checkpointEvery,
    });
  } finally {
    await store.close();
  }
}

describe('checkpoints cannot vanish silently (issue 11, finding 2)', () => {
  it('events written after a checkpoint name it (schemaVersion 3); the checkpoint itself does not', async () => {
    const { path } = await builtFile();
    const rows = readRows(path);
    const checkpoint = rows.find((r) => r.stream === NAMES.checkpoints);
    assert.ok(checkpoint !== undefined);
    const after = rows.filter((r) => r.position > checkpoint.position);
    assert.ok(after.length > 0);
    for (const row of after) {
      const link = chainLinkOf(JSON.parse(row.metadata));
      assert.deepEqual(link.kind === 'chained' ? link.checkpoint : null, 0n, `${row.stream}@${row.revision}`);
    }
    assert.equal(JSON.parse(checkpoint.metadata).schemaVersion, 2);
  });

  it('the checkpoint stream deleted in the sqlite file: checkpoint-stream-missing, at the first event naming it', async () => {
    const { path, stks } = await builtFile();
    deleteStreamRows(path, NAMES.checkpoints);
    const first = readRows(path).find((r) => JSON.parse(r.metadata).schemaVersion === 3);
    assert.ok(first !== undefined);
    const report = await verifyPath(path, stks);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.position]),
      [['checkpoint-stream-missing', first.position]],
    );
    assert.equal(report.checkpointsChecked, 0);
  });

  it('the checkpoint stream deleted through the port (memory store): the same', async () => {
    const store = new MemoryEventStore();
    const ledger = await open(store, new ScriptedProvider());
    try {
      await build(ledger);
      await store.deleteStream(NAMES.checkpoints);
      const report = await ledger.verify();
      assert.deepEqual(
        report.problems.map((p) => p.kind),
        ['checkpoint-stream-missing'],
      );
    } finally {
      await ledger.close();
    }
  });

  it('history forged and the checkpoints deleted: an automatic checkpoint is refused and nothing is MACed', async () => {
    const { path, stks } = await builtFile();
    deleteStreamRows(path, NAMES.checkpoints);
    // The last scope's enablement rewritten to another key checksum: the last event of its stream,
    // so no link after it breaks, and no checkpoint is left to tell.
    const last = readRows(path).findLast((r) => r.type === 'KeyManagementEnabled');
    assert.ok(last !== undefined);
    editEventData(path, last.position, (data) => {
      const key = data.key as { checksum: string };
      return {
        ...data,
        key: {
          ...key,
          checksum: key.checksum.startsWith('0') ? `1${key.checksum.slice(1)}` : `0${key.checksum.slice(1)}`,
        },
      };
    });

    const store = SqliteEventStore.open(path);
    const ledger = await open(store, stks, 2);
    try {
      // Enough writes for automatic checkpoints: each one is refused (the events name a
      // checkpoint the stream no longer holds), and the writes themselves succeed.
      for (const ns of ['a', 'b', 'c']) await ledger.admin.enableKeyManagement(CUST, ns);
      assert.equal((await store.readStream(NAMES.checkpoints)).length, 0, 'no checkpoint written');
      const head = await store.headPosition();
      await assert.rejects(ledger.checkpoint(), { code: 'ERR_LEDGER_TAMPERED' });
      assert.equal(await store.headPosition(), head, 'nothing written');
      // With checkpoints every 2 events, the whole ledger is an uncovered tail too; and the stored
      // snapshot was bound to the event the forger changed.
      const report = await ledger.verify();
      assert.deepEqual([...new Set(report.problems.map((p) => p.kind))].sort(), [
        'checkpoint-stream-missing',
        'snapshot-event-mismatch',
        'uncovered-tail-too-long',
      ]);
    } finally {
      await ledger.close();
      await store.close();
    }
  });

  it('the newest checkpoint edited: a new checkpoint is refused, ERR_LEDGER_TAMPERED, nothing written', async () => {
    const { path, stks } = await builtFile();
    const checkpoint = readRows(path).find((r) => r.stream === NAMES.checkpoints);
    assert.ok(checkpoint !== undefined);
    changeDataByte(path, checkpoint.position);
    const store = SqliteEventStore.open(path);
    const ledger = await open(store, stks);
    try {
      const head = await store.headPosition();
      await assert.rejects(ledger.checkpoint(), { code: 'ERR_LEDGER_TAMPERED' });
      assert.equal(await store.headPosition(), head);
    } finally {
      await ledger.close();
      await store.close();
    }
  });

  it('more events after the newest checkpoint than twice the interval: uncovered-tail-too-long', async () => {
    const { path, stks } = await builtFile();
    const rows = readRows(path);
    const checkpoint = rows.findLast((r) => r.stream === NAMES.checkpoints);
    assert.ok(checkpoint !== undefined);
    const tail = rows.filter((r) => r.position > checkpoint.position);
    assert.equal(tail.length, 4, 'two enablements, each with its material, follow the checkpoint');
    assert.equal((await verifyPath(path, stks, 2)).ok, true, 'an interval of 2 allows 4');
    const report = await verifyPath(path, stks, 1);
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.position]),
      [['uncovered-tail-too-long', tail[2]?.position]],
    );
    assert.equal((await verifyPath(path, stks, 0)).ok, true, '0: automatic checkpoints off, no bound');
    assert.equal((await verifyPath(path, stks)).ok, true, 'the default interval (1000)');
  });
});
