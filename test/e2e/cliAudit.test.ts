import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { streamNames } from '../../src/journal/streamNames.js';
import { cliHarness, ledgerDb, requireBuiltCli, storeHead, tempDirs } from '../helpers/cliHarness.js';
import {
  changeDataByte,
  deleteEvent,
  dropLastEvents,
  insertForgedEvent,
  readRows,
  type StoredRow,
  swapEvents,
} from '../helpers/tamperSqlite.js';

/**
 * `keyledger verify`, `audit export`, `checkpoint` driven as a user would: the built CLI (`npm test`
 * builds first), one process per command, on a dev setup made by `init`. The attacker edits the
 * sqlite file directly (test/helpers/tamperSqlite.ts). KEYLEDGER_E2E_BIN points at another build
 * (test/helpers/cliHarness.ts).
 */
const TENANT = Buffer.from('tenant-1').toString('base64');
const NAMES = streamNames('kl-');
const ORDERS = NAMES.scope(keyScope(TENANT, 'orders'));

const { keyledger, ok, refused } = cliHarness();

interface JsonProblem {
  kind: string;
  message: string;
  position: string;
  stream: string;
  revision: string | null;
}
interface JsonReport {
  ok: boolean;
  eventsChecked: number;
  macs: string;
  macsVerified: number;
  firstProblem: JsonProblem | null;
  lastCheckpoint: { revision: string; hash: string } | null;
}

/** `verify --json` on a tampered ledger: exit 1, ERR_LEDGER_TAMPERED, and the report's first problem. */
function tampered(cwd: string, args: readonly string[] = []): JsonProblem {
  const run = keyledger(cwd, ['verify', '--json', ...args]);
  assert.equal(run.code, 1, `verify must fail: ${run.stdout}${run.stderr}`);
  // With --json the error is one JSON object on stderr (docs/cli.md): the same code and message.
  const error = JSON.parse(run.stderr) as { code: string; message: string };
  assert.match(
    `error ${error.code}: ${error.message}`,
    /error ERR_LEDGER_TAMPERED: verification failed at position \d+/,
  );
  const report = JSON.parse(run.stdout) as JsonReport;
  assert.equal(report.ok, false);
  assert.ok(report.firstProblem !== null);
  return report.firstProblem;
}

const dirs = tempDirs('keyledger-audit-e2e-');
const tempDir = () => dirs.make();
after(() => dirs.removeAll());

describe('keyledger verify, audit export, checkpoint (built CLI)', () => {
  /** The ledger every test copies: orders rotated twice (revisions 0..2), a checkpoint, one more scope. */
  let base: string;
  let orders: StoredRow[];

  /** A copy of the base setup (config, keystore, sqlite file) for one attack. */
  function copy(): string {
    const dir = tempDir();
    cpSync(base, dir, { recursive: true });
    return dir;
  }

  const order = (revision: number): StoredRow => {
    const row = orders[revision];
    if (row === undefined) throw new Error(`no orders event at revision ${revision}`);
    return row;
  };

  before(() => {
    requireBuiltCli();
    base = tempDir();
    ok(base, ['init']);
    for (const ns of ['orders', 'billing', 'users']) ok(base, ['enable-key-management', `${TENANT}:${ns}`]);
    ok(base, ['rotate-managed-key', `${TENANT}:orders`]);
    ok(base, ['rotate-managed-key', `${TENANT}:orders`]);
    ok(base, ['clear-cache']);
    assert.match(
      ok(base, ['checkpoint']),
      /^checkpoint #0 at position \d+: \d+ stream heads up to position \d+/,
    );
    ok(base, ['enable-key-management', `${TENANT}:later`]);
    orders = readRows(ledgerDb(base)).filter((r) => r.stream === ORDERS);
    assert.equal(orders.length, 3);
  });

  it('an untouched ledger verifies: exit 0, with what was checked and the anchor to keep', () => {
    const text = ok(base, ['verify']);
    assert.match(text, /^verified: \d+ events in \d+ streams, 1 checkpoint \(1 MAC verified\)/);
    assert.match(text, /2 events after the newest checkpoint/);
    assert.match(text, /--anchor 0:[0-9a-f]{64}/);
    const report = JSON.parse(ok(base, ['verify', '--json'])) as JsonReport;
    assert.equal(report.ok, true);
    assert.equal(report.eventsChecked, readRows(ledgerDb(base)).length);
    assert.equal(report.macsVerified, 1);
  });

  it('one byte of an event’s data changed: exit 1, modified, at that position', () => {
    const dir = copy();
    changeDataByte(ledgerDb(dir), order(1).position);
    const first = tampered(dir);
    assert.deepEqual(
      [first.kind, first.position, first.stream, first.revision],
      ['modified', order(1).position.toString(), ORDERS, '1'],
    );
    const text = keyledger(dir, ['verify']);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^TAMPERED: /);
    assert.match(text.stdout, new RegExp(`modified at position ${order(1).position} \\(${ORDERS}@1\\)`));
  });

  it('an event deleted: deleted, at the event after the gap', () => {
    const dir = copy();
    deleteEvent(ledgerDb(dir), order(1).position);
    const first = tampered(dir);
    assert.deepEqual(
      [first.kind, first.position, first.stream, first.revision],
      ['deleted', order(2).position.toString(), ORDERS, '1'],
    );
  });

  it('two events swapped: reordered, at the first of them', () => {
    const dir = copy();
    swapEvents(ledgerDb(dir), order(1).position, order(2).position);
    const first = tampered(dir);
    assert.deepEqual(
      [first.kind, first.position, first.stream, first.revision],
      ['reordered', order(1).position.toString(), ORDERS, '1'],
    );
  });

  it('a forged event inserted (properly linked): inserted, at the forged event', () => {
    const dir = copy();
    const forged = insertForgedEvent(ledgerDb(dir), order(0).position, {
      type: 'ManagedKeyDisabled',
      data: { custodian: TENANT, namespace: 'orders', keyId: '0'.repeat(32), previousState: 'ACTIVE' },
    });
    const first = tampered(dir);
    assert.deepEqual(
      [first.kind, first.position, first.stream, first.revision],
      ['inserted', forged.toString(), ORDERS, '1'],
    );
  });

  it('the last events of a stream dropped behind the checkpoint: truncated, from the first revision dropped', () => {
    const dir = copy();
    dropLastEvents(ledgerDb(dir), ORDERS, 2);
    const first = tampered(dir);
    assert.deepEqual(
      [first.kind, first.position, first.stream, first.revision],
      ['truncated', order(2).position.toString(), ORDERS, '1'],
    );
  });

  it('--anchor: a checkpoint kept from an earlier verify must still be there', () => {
    const report = JSON.parse(ok(base, ['verify', '--json'])) as JsonReport;
    const anchor = report.lastCheckpoint;
    assert.ok(anchor !== null);
    ok(base, ['verify', '--anchor', `${anchor.revision}:${anchor.hash}`]);
    const first = tampered(base, ['--anchor', `${anchor.revision}:${'0'.repeat(64)}`]);
    assert.deepEqual([first.kind, first.stream, first.revision], ['anchor-mismatch', NAMES.checkpoints, '0']);
  });

  it('audit export writes JSON lines that verify --file checks offline; an edited or cut file is caught', () => {
    const dir = copy();
    const file = join(dir, 'ledger.jsonl');
    assert.match(
      ok(dir, ['audit', 'export', '--out', 'ledger.jsonl']),
      /^exported \d+ events \(up to position \d+\) to /,
    );
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.deepEqual(JSON.parse(lines[0] ?? '').format, 'keyledger-audit-export');
    assert.equal(lines.length, readRows(ledgerDb(dir)).length + 2);
    // To stdout: the same lines (only the header's export time differs).
    assert.deepEqual(ok(dir, ['audit', 'export']).trimEnd().split('\n').slice(1), lines.slice(1));
    assert.match(ok(dir, ['verify', '--file', 'ledger.jsonl']), /^verified: /);

    // One character of the orders event at revision 1, inside its data.
    const target = lines.findIndex((l) => l.includes(`"position":"${order(1).position}"`));
    const line = lines[target] ?? '';
    const at = line.indexOf('"checksum":"') + '"checksum":"'.length;
    const edited = [...lines];
    edited[target] = `${line.slice(0, at)}${line[at] === '0' ? '1' : '0'}${line.slice(at + 1)}`;
    writeFileSync(join(dir, 'edited.jsonl'), `${edited.join('\n')}\n`);
    const first = tampered(dir, ['--file', 'edited.jsonl']);
    assert.deepEqual(
      [first.kind, first.position, first.stream],
      ['modified', order(1).position.toString(), ORDERS],
    );

    writeFileSync(join(dir, 'cut.jsonl'), `${lines.slice(0, -2).join('\n')}\n`);
    const cut = tampered(dir, ['--file', 'cut.jsonl']);
    assert.equal(cut.kind, 'truncated');
  });

  it('verify --file without a config checks all but the MACs, and says so', () => {
    const dir = copy();
    ok(dir, ['audit', 'export', '--out', 'ledger.jsonl']);
    const elsewhere = tempDir();
    const run = keyledger(elsewhere, ['verify', '--json', '--file', join(dir, 'ledger.jsonl')]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as JsonReport).macs, 'skipped');
    assert.match(run.stderr, /MACs were not checked/);
  });

  it('checkpoint writes one when something is new, and nothing otherwise', async () => {
    const dir = copy();
    const written = JSON.parse(ok(dir, ['checkpoint', '--json'])) as {
      revision: string;
      coveredPosition: string;
    };
    assert.equal(written.revision, '1');
    assert.equal(BigInt(written.coveredPosition) + 1n, await storeHead(dir));
    const before = await storeHead(dir);
    assert.equal(ok(dir, ['checkpoint', '--json']).trim(), 'null');
    assert.match(ok(dir, ['checkpoint']), /nothing was written since the last checkpoint/);
    assert.equal(await storeHead(dir), before);
  });

  it('config checkpointEvery: checkpoints are written as the ledger grows; a bad value is refused', async () => {
    const dir = tempDir();
    ok(dir, ['init']);
    const path = join(dir, 'keyledger.config.json');
    const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...config, checkpointEvery: 3 }));
    for (const ns of ['a', 'b', 'c']) ok(dir, ['enable-key-management', `${TENANT}:${ns}`]);
    const report = JSON.parse(ok(dir, ['verify', '--json'])) as JsonReport & { checkpointsChecked: number };
    assert.equal(report.ok, true);
    assert.ok(report.checkpointsChecked >= 1, `${report.checkpointsChecked} checkpoints`);
    writeFileSync(path, JSON.stringify({ ...config, checkpointEvery: -1 }));
    await refused(dir, ['clear-cache'], 'ERR_INVALID_CONFIG');
  });

  it('bad input is refused with exit 2 before anything is opened', async () => {
    const dir = copy();
    await refused(dir, ['verify', '--anchor', 'latest'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['verify', 'extra'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['verify', '--out', 'x'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['audit'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['audit', 'import'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['checkpoint', '--file', 'x'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['verify', '--file', 'missing.jsonl'], 'ERR_AUDIT_FILE_INVALID');
    await refused(dir, ['verify', '--file', 'keyledger.config.json'], 'ERR_AUDIT_FILE_INVALID');
    await refused(
      dir,
      ['audit', 'export', '--out', join(dir, 'no', 'such', 'dir', 'x.jsonl')],
      'ERR_INVALID_ARGUMENT',
    );
  });
});
