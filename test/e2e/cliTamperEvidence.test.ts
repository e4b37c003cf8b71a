import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { streamNames } from '../../src/journal/streamNames.js';
import { cliHarness, ledgerDb, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { editSnapshot } from '../helpers/tamperSqlite.js';

/**
 * Issue 11 through the built CLI: the rollback anchor file from the config, and a tampered
 * snapshot (the command works from the events and warns). Its own file: each suite of the e2e
 * files runs under one test timeout.
 */
const TENANT = Buffer.from('tenant-1').toString('base64');
const NAMES = streamNames('kl-');

const { keyledger, ok } = cliHarness();

function tampered(cwd: string): { kind: string; stream: string; revision: string | null } {
  const run = keyledger(cwd, ['verify', '--json']);
  assert.equal(run.code, 1, `verify must fail: ${run.stdout}${run.stderr}`);
  const report = JSON.parse(run.stdout) as {
    firstProblem: { kind: string; stream: string; revision: string | null };
  };
  return report.firstProblem;
}

const dirs = tempDirs('keyledger-tamper-e2e-');
after(() => dirs.removeAll());

describe('keyledger: snapshots and rollback (built CLI)', () => {
  let base: string;
  function copy(): string {
    const dir = dirs.make();
    cpSync(base, dir, { recursive: true });
    return dir;
  }

  before(() => {
    requireBuiltCli();
    base = dirs.make();
    ok(base, ['init']);
    for (const ns of ['orders', 'billing']) ok(base, ['enable-key-management', `${TENANT}:${ns}`]);
    ok(base, ['rotate-managed-key', `${TENANT}:orders`]);
    ok(base, ['rotate-managed-key', `${TENANT}:orders`]);
    ok(base, ['checkpoint']);
  });

  it('config anchorFile: checkpoints are appended there, and a database restored from an older copy is rollback', () => {
    const dir = copy();
    const configFile = join(dir, 'keyledger.config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, JSON.stringify({ ...config, anchorFile: 'anchors.jsonl' }));
    ok(dir, ['enable-key-management', `${TENANT}:later`]);
    ok(dir, ['checkpoint']);
    assert.equal(readFileSync(join(dir, 'anchors.jsonl'), 'utf8').trimEnd().split('\n').length, 1);
    const db = ledgerDb(dir);
    cpSync(db, `${db}.old`);
    ok(dir, ['rotate-managed-key', `${TENANT}:billing`]);
    ok(dir, ['checkpoint']);
    cpSync(`${db}.old`, db);
    const first = tampered(dir);
    assert.deepEqual([first.kind, first.stream, first.revision], ['rollback', NAMES.checkpoints, '2']);
  });

  it('a tampered snapshot: a whole-view command works from the events and warns on stderr', () => {
    const dir = copy();
    const db = ledgerDb(dir);
    editSnapshot(db, 'kl-keymeta', (s) => ({ ...s, position: s.position + 1000n }));
    const run = keyledger(dir, ['list-scopes', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^warning: snapshot kl-keymeta was not used \(snapshot-beyond-head\)/);
    assert.ok((JSON.parse(run.stdout) as unknown[]).length > 0);
    // A one-scope command reads the scope's own streams, never the snapshot: no warning to give.
    const point = keyledger(dir, ['show-key-status', `${TENANT}:orders`, '--json']);
    assert.equal(point.code, 0, point.stderr);
    assert.equal(point.stderr, '');
    assert.equal((JSON.parse(point.stdout) as unknown[]).length, 3);
    assert.equal(tampered(dir).kind, 'snapshot-beyond-head');
  });
});
