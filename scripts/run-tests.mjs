#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's own test runner, TypeScript loaded through tsx.
// Node 20's --test does not expand globs, so the files are listed here. Arguments narrow the run:
// `node scripts/run-tests.mjs store` runs only test files whose path contains "store".
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const filters = process.argv.slice(2);
const files = findTests(join(root, 'test'))
  .map((file) => relative(root, file))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();

if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

// The full reliability runs (KEYLEDGER_RELIABILITY=full: 200 kills, one-minute loads) run for many
// minutes per file by design; Node's --test-timeout also caps a whole file, so they get an hour.
const testTimeoutMs = process.env.KEYLEDGER_RELIABILITY === 'full' ? 3_600_000 : 120_000;

const result = spawnSync(
  process.execPath,
  // A per-test timeout, so a hung test fails the run instead of stalling it until CI's limit. No
  // --test-force-exit: on Node 20 it was seen to end a file before its last suite had run, dropping
  // those tests from the count silently; tests close what they open instead.
  [
    '--import',
    'tsx',
    // KEYLEDGER_LEAK_SCAN=<report file>: every test process scans the temporary directories it
    // makes for leaked keys before removing them (test/helpers/suiteLeakScanHook.ts; npm run test:leaks).
    ...(process.env.KEYLEDGER_LEAK_SCAN ? ['--import', join(root, 'test/helpers/suiteLeakScanHook.ts')] : []),
    '--test',
    '--test-concurrency=2',
    `--test-timeout=${testTimeoutMs}`,
    '--test-reporter=spec',
    ...files,
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
