import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';
import { startNotingTestKeys } from './knownTestKeys.js';
import { KNOWN_TEST_PASSWORDS, scanDirectory } from './suiteLeakScan.js';

/**
 * Preload (`node --import tsx --import ./test/helpers/suiteLeakScanHook.ts`) that runs the leak scan
 * (suiteLeakScan.ts) over every temporary directory a test process makes, when
 * KEYLEDGER_LEAK_SCAN names a report file (scripts/run-tests.mjs adds the import then; test
 * files run in children that inherit it). Directories are those made with mkdtemp/mkdtempSync;
 * each is scanned once (for the keys found in it and those the process noted, knownTestKeys.ts), just before a recursive rm removes it, or at process exit if it is still
 * there. One JSON line per directory is appended to the report (O_APPEND: processes share it).
 */

const report = process.env.KEYLEDGER_LEAK_SCAN;

if (report !== undefined && report !== '') {
  const made = new Set<string>();
  // Keys this process makes in memory (ScriptedProvider): searched for in every directory too.
  const known = startNotingTestKeys();
  const scanned = new Set<string>();

  const scan = (dir: string): void => {
    if (scanned.has(dir) || !fs.existsSync(dir)) return;
    scanned.add(dir);
    let line: string;
    try {
      const started = performance.now();
      const result = scanDirectory(dir, KNOWN_TEST_PASSWORDS, known);
      const ms = Math.round(performance.now() - started);
      line = JSON.stringify({ pid: process.pid, test: process.argv[1] ?? null, ms, ...result });
    } catch (error) {
      line = JSON.stringify({ pid: process.pid, dir, error: String(error) });
    }
    fs.appendFileSync(report, `${line}\n`);
  };

  /** The made directories `path` removes (itself, or any inside it). */
  const before = (path: unknown): void => {
    if (typeof path !== 'string') return;
    const target = resolve(path);
    for (const dir of made) if (dir === target || dir.startsWith(`${target}/`)) scan(dir);
  };

  const { mkdtempSync, rmSync, rm } = fs;
  const mkdtemp = fs.mkdtemp;
  const promisesMkdtemp = fs.promises.mkdtemp;
  const promisesRm = fs.promises.rm;

  fs.mkdtempSync = ((prefix: string, options?: unknown) => {
    const dir = mkdtempSync(prefix, options as fs.EncodingOption);
    made.add(resolve(String(dir)));
    return dir;
  }) as typeof fs.mkdtempSync;
  fs.mkdtemp = ((prefix: string, ...rest: unknown[]) => {
    const callback = rest.pop() as (error: unknown, dir?: string) => void;
    (mkdtemp as (...args: unknown[]) => void)(prefix, ...rest, (error: unknown, dir?: string) => {
      if (dir !== undefined) made.add(resolve(String(dir)));
      callback(error, dir);
    });
  }) as typeof fs.mkdtemp;
  fs.promises.mkdtemp = (async (prefix: string, options?: unknown) => {
    const dir = await promisesMkdtemp(prefix, options as fs.EncodingOption);
    made.add(resolve(String(dir)));
    return dir;
  }) as typeof fs.promises.mkdtemp;
  fs.rmSync = ((path: fs.PathLike, options?: fs.RmOptions) => {
    before(path);
    return rmSync(path, options);
  }) as typeof fs.rmSync;
  fs.rm = ((path: fs.PathLike, ...rest: unknown[]) => {
    before(path);
    (rm as (...args: unknown[]) => void)(path, ...rest);
  }) as typeof fs.rm;
  fs.promises.rm = (async (path: fs.PathLike, options?: fs.RmOptions) => {
    before(path);
    return promisesRm(path, options);
  }) as typeof fs.promises.rm;
  // `import { rmSync } from 'node:fs'` (and node:fs/promises) read the patched functions from here on.
  syncBuiltinESMExports();

  process.on('exit', () => {
    for (const dir of made) scan(dir);
  });
}
