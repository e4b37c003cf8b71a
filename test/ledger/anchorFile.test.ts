import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readNewestAnchor } from '../../src/audit/anchorFile.js';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { streamNames } from '../../src/journal/streamNames.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * Finding 7 of issue 11: a whole database replaced by an older copy is consistent in itself;
 * only something kept outside it can tell. With `anchorFile`, every checkpoint is appended there,
 * and verify compares the store with the newest line (src/audit/anchorFile.ts).
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const NAMES = streamNames('kl-');

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-anchor-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function session<T>(
  path: string,
  stks: ScriptedProvider,
  anchorFile: string,
  use: (ledger: Ledger) => Promise<T>,
): Promise<T> {
  const store = SqliteEventStore.open(path);
  const ledger = await Ledger.open({
    store,
    provider: new GeneratedKeyProvider({ systemKeys: stks }),
    actor: 'test',
    checkpointEvery: 0,
    anchorFile,
    resolver: { dynamicLookup: false },
  });
  try {
    return await use(ledger);
  } finally {
    await ledger.close();
    await store.close();
  }
}

function copyDb(from: string, to: string): void {
  for (const suffix of ['', '-wal', '-shm']) {
    rmSync(`${to}${suffix}`, { force: true });
    if (existsSync(`${from}${suffix}`)) copyFileSync(`${from}${suffix}`, `${to}${suffix}`);
  }
}

describe('the rollback anchor file (issue 11, finding 7)', () => {
  it('every checkpoint is appended (0600) with the hash verify reports', async () => {
    const path = join(dir, `ledger-${++files}.db`);
    const anchorFile = join(dir, `anchor-${files}.jsonl`);
    const stks = new ScriptedProvider();
    await session(path, stks, anchorFile, async (ledger) => {
      await ledger.initialise();
      await ledger.admin.enableKeyManagement(CUST, 'orders');
      const first = await ledger.checkpoint();
      await ledger.admin.rotateManagedKey(CUST, 'orders');
      const second = await ledger.checkpoint();
      assert.ok(first !== null && second !== null);
      const lines = readFileSync(anchorFile, 'utf8').trimEnd().split('\n');
      assert.equal(lines.length, 2);
      assert.equal(statSync(anchorFile).mode & 0o777, 0o600);
      assert.deepEqual(await readNewestAnchor(anchorFile, 'kl-'), { revision: 1n, hash: second.hash });
      const report = await ledger.verify();
      assert.equal(report.ok, true, report.firstProblem?.message);
      assert.deepEqual(report.lastCheckpoint?.hash, second.hash);
    });
  });

  it('the database restored from an older copy: verify reports rollback (the library and the bare store)', async () => {
    const path = join(dir, `ledger-${++files}.db`);
    const old = join(dir, `ledger-${files}-old.db`);
    const anchorFile = join(dir, `anchor-${files}.jsonl`);
    const stks = new ScriptedProvider();
    await session(path, stks, anchorFile, async (ledger) => {
      await ledger.initialise();
      await ledger.admin.enableKeyManagement(CUST, 'orders');
      assert.notEqual(await ledger.checkpoint(), null);
    });
    copyDb(path, old);
    await session(path, stks, anchorFile, async (ledger) => {
      await ledger.admin.rotateManagedKey(CUST, 'orders');
      assert.notEqual(await ledger.checkpoint(), null);
    });
    copyDb(old, path);

    const store = SqliteEventStore.open(path);
    try {
      const provider = new GeneratedKeyProvider({ systemKeys: stks });
      assert.equal((await verifyStore(store, { provider })).ok, true, 'consistent in itself');
      const report = await verifyStore(store, { provider, anchorFile });
      assert.deepEqual(
        report.problems.map((p) => [p.kind, p.stream, p.revision]),
        [['rollback', NAMES.checkpoints, 1n]],
      );
    } finally {
      await store.close();
    }
    await session(path, stks, anchorFile, async (ledger) => {
      assert.equal((await ledger.verify()).firstProblem?.kind, 'rollback');
    });
  });

  it('an anchor file with a line that is not an anchor is ERR_ANCHOR_FILE, never skipped', async () => {
    const path = join(dir, `ledger-${++files}.db`);
    const anchorFile = join(dir, `anchor-${files}.jsonl`);
    const stks = new ScriptedProvider();
    await session(path, stks, anchorFile, async (ledger) => {
      await ledger.initialise();
      await ledger.admin.enableKeyManagement(CUST, 'orders');
      await ledger.checkpoint();
      writeFileSync(anchorFile, 'garbage\n', { flag: 'a' });
      await assert.rejects(ledger.verify(), { code: 'ERR_ANCHOR_FILE' });
    });
  });
});
