#!/usr/bin/env node
// The leak scan over the test suite's own ledgers (issue 15, part 5; `npm run test:leaks`): runs the
// tests (all, or those whose path contains an argument, as scripts/run-tests.mjs) with
// KEYLEDGER_LEAK_SCAN set, so every test process scans each temporary directory it made before
// removing it (test/helpers/suiteLeakScanHook.ts), then sums the report. Fails on any hit, on a
// directory that could not be scanned, or on a failing test.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const report = process.env.KEYLEDGER_LEAK_SCAN || join(tmpdir(), `keyledger-leak-scan-${process.pid}.jsonl`);
if (existsSync(report)) rmSync(report);

const started = Date.now();
const run = spawnSync(process.execPath, [join(root, 'scripts/run-tests.mjs'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, KEYLEDGER_LEAK_SCAN: report },
});

const lines = existsSync(report)
  ? readFileSync(report, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line))
  : [];
const sum = (field) => lines.reduce((total, line) => total + (line[field] ?? 0), 0);
const errors = lines.filter((line) => line.error !== undefined);
const hits = lines.flatMap((line) => (line.hits ?? []).map((hit) => `${hit} (${line.dir}, ${line.test})`));
const withKeys = lines.filter((line) => (line.keys ?? 0) > 0).length;
console.log(
  [
    `leak scan: ${lines.length} directories (${withKeys} with known keys), ${sum('files')} files, ${sum('bytes')} bytes`,
    `  ${sum('keystores')} keystores, ${sum('entries')} secret entries, ${sum('unwrapped')} DEKs unwrapped, ${sum('keys')} keys`,
    `  ${sum('searches')} searches (keys x 5 forms x files), ${hits.length} hits, ${errors.length} directories not scanned`,
    `  ${((Date.now() - started) / 1000).toFixed(0)} s; report ${report}`,
  ].join('\n'),
);
for (const hit of hits) console.log(`  HIT ${hit}`);
for (const error of errors) console.log(`  NOT SCANNED ${error.dir}: ${error.error}`);
process.exit(hits.length > 0 || errors.length > 0 || run.status !== 0 ? 1 : 0);
