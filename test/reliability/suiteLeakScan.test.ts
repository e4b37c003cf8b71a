import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

/**
 * The leak scan over the suite's own ledgers (issue 15, part 5; test/helpers/suiteLeakScanHook.ts):
 * the short version runs a few real test files under the hook in a child and asserts no hit, and
 * that it scanned enough to mean something; and it must find leaks planted on purpose
 * (test/fixtures/plantedLeak.ts). The full version is `npm run test:leaks` (BENCHMARKS.md).
 */

const root = new URL('../..', import.meta.url).pathname;
const HOOK = join(root, 'test/helpers/suiteLeakScanHook.ts');
/** Real tests with keystores and ledgers: a sqlite ledger with 29 keys, an STK alias, the CLI scenario. */
const REAL_TESTS = [
  'test/ledger/ledgerSqlite.test.ts',
  'test/ledger/systemKeyAlias.test.ts',
  'test/reliability/secretLeaks.test.ts',
];

interface ScanLine {
  readonly dir: string;
  readonly test: string | null;
  readonly files?: number;
  readonly keystores?: number;
  readonly entries?: number;
  readonly unwrapped?: number;
  readonly keys?: number;
  readonly searches?: number;
  readonly hits?: readonly string[];
  readonly error?: string;
}

const work = mkdtempSync(join(tmpdir(), 'keyledger-suite-scan-'));
after(() => rmSync(work, { recursive: true, force: true }));

function runUnderHook(report: string, args: readonly string[]) {
  // The child's own env decides where its report goes (not a scan this process may be under), and
  // its --test is a run of its own (NODE_TEST_CONTEXT would make it report to this runner instead).
  const { KEYLEDGER_LEAK_SCAN: _outer, NODE_TEST_CONTEXT: _context, ...env } = process.env;
  return spawnSync(process.execPath, ['--import', 'tsx', '--import', HOOK, ...args], {
    cwd: root,
    env: { ...env, KEYLEDGER_LEAK_SCAN: report },
    encoding: 'utf8',
    timeout: 110_000,
  });
}

function readReport(report: string): ScanLine[] {
  if (!existsSync(report)) return [];
  return readFileSync(report, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ScanLine);
}

const total = (lines: readonly ScanLine[], field: 'keys' | 'unwrapped' | 'entries' | 'searches' | 'files') =>
  lines.reduce((sum, line) => sum + (line[field] ?? 0), 0);

describe('reliability: leak scan over the suite’s own ledgers', () => {
  it('finds planted leaks: hex and raw through rmSync, base64url and a noted key’s HEX through fs/promises rm; a clean dir at exit', () => {
    const report = join(work, 'planted.jsonl');
    const child = runUnderHook(report, [join(root, 'test/fixtures/plantedLeak.ts')]);
    assert.equal(child.status, 0, child.stderr);
    const cleanDir = child.stdout.trim();
    after(() => rmSync(cleanDir, { recursive: true, force: true }));
    const lines = readReport(report);
    const byPrefix = (prefix: string) => lines.find((l) => l.dir.includes(prefix));
    assert.deepEqual([...(byPrefix('keyledger-planted-sync-')?.hits ?? [])].sort(), [
      'keystore.p12:planted as hex in app.log',
      'keystore.p12:planted as raw in dump.bin',
    ]);
    const asyncHits = byPrefix('keyledger-planted-async-')?.hits ?? [];
    assert.ok(asyncHits.includes('keystore.p12:planted as base64url in out.json'), JSON.stringify(lines));
    assert.ok(asyncHits.includes('planted noted #0 as HEX in out.json'), JSON.stringify(lines));
    assert.deepEqual(byPrefix('keyledger-planted-clean-')?.hits, []);
    assert.equal(
      byPrefix('keyledger-planted-clean-')?.keystores,
      1,
      'its keystore opened with a test password',
    );
    assert.equal(byPrefix('keyledger-planted-clean-')?.keys, 2, 'its keystore entry and the noted key');
  });

  it('real test files: no hit, and enough ledgers and keys scanned', { timeout: 120_000 }, () => {
    const report = join(work, 'real.jsonl');
    const child = runUnderHook(report, [
      '--test',
      '--test-concurrency=2',
      '--test-reporter=dot',
      ...REAL_TESTS,
    ]);
    assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`);
    const lines = readReport(report);
    const counts = {
      directories: lines.length,
      withKeys: lines.filter((l) => (l.keys ?? 0) > 0).length,
      entries: total(lines, 'entries'),
      unwrapped: total(lines, 'unwrapped'),
      keys: total(lines, 'keys'),
      searches: total(lines, 'searches'),
    };
    console.log(`suite leak scan (short): ${JSON.stringify(counts)}`);
    assert.deepEqual(
      lines.filter((l) => l.error !== undefined || (l.hits?.length ?? 0) > 0),
      [],
    );
    // It cannot pass by scanning nothing: every test file's ledger was found, with its keys.
    assert.ok(counts.withKeys >= 3, JSON.stringify(counts));
    assert.ok(counts.entries >= 8, JSON.stringify(counts));
    assert.ok(counts.unwrapped >= 25, JSON.stringify(counts));
    assert.ok(counts.searches >= 600, JSON.stringify(counts));
  });
});
