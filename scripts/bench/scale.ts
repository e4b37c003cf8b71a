/**
 * Issue 18: scale with the number of tenants. For each size N (BENCH_SCALE, default "10000,100000"):
 * a ledger of N enabled scopes (sqlite, generated keys under a keystore STK, set up by the CLI's
 * `init`), built once under /tmp/keyledger-scale-<N> and reused (delete it to rebuild); then
 *
 * - bulk enable rate: admin.enableKeyManagementMany while building (only when built by this run);
 * - the built CLI (dist/, run `npm run build` first): wall time and peak RSS (/usr/bin/time) of
 *   `show-key-status <one scope>` and `rotate-managed-key <one scope>` (point ledgers);
 * - `Ledger.open` (whole view) time and peak RSS, in a child process;
 * - ledger file size per scope.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, providerFor } from '../../src/host/config.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { openEventStore } from '../../src/store/storeUrl.js';
import { type BenchResult, custodian, machineInfo, main, type Row } from './common.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const SIZES = (process.env.BENCH_SCALE ?? '10000,100000').split(',').map(Number);
const TARGET_S = 0.5;
const TARGET_MB = 100;

/** Wall and CPU (user + sys) seconds and peak RSS of a child process, from /usr/bin/time. */
function timedRun(
  args: readonly string[],
  cwd: string,
): { seconds: number; cpu: number; rssMb: number; stdout: string } {
  const run = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', process.execPath, ...args], {
    cwd,
    env: { ...process.env, KEYLEDGER_ACTOR: 'bench' },
    encoding: 'utf8',
  });
  const last = run.stderr.trim().split('\n').at(-1) ?? '';
  const [seconds, user, sys, kb] = last.split(' ').map(Number);
  if (
    run.status !== 0 ||
    seconds === undefined ||
    user === undefined ||
    sys === undefined ||
    kb === undefined
  )
    throw new Error(`${args.join(' ')} failed: ${run.stderr}`);
  return { seconds, cpu: user + sys, rssMb: kb / 1024, stdout: run.stdout };
}

async function openLibrary(dir: string) {
  const config = loadConfig(join(dir, 'keyledger.config.json'));
  const store = openEventStore(config.store ?? 'sqlite:.keyledger/ledger.db', dir);
  const provider = providerFor(config);
  const started = process.hrtime.bigint();
  const ledger = await Ledger.open({ store, provider, actor: 'bench', checkpointEvery: 0 });
  const openSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    ledger,
    openSeconds,
    close: async () => {
      await ledger.close();
      await provider.close();
      await store.close();
    },
  };
}

/** Builds the ledger of `n` scopes if it is not there yet; the enable rate when built now. */
async function build(dir: string, n: number): Promise<number | null> {
  if (existsSync(join(dir, '.keyledger', 'ledger.db'))) return null;
  mkdirSync(dir, { recursive: true });
  const init = spawnSync(process.execPath, [CLI, 'init'], { cwd: dir, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`);
  const opened = await openLibrary(dir);
  const started = process.hrtime.bigint();
  const batch = 10_000;
  for (let from = 0; from < n; from += batch) {
    const scopes = Array.from({ length: Math.min(batch, n - from) }, (_, i) => ({
      custodian: custodian(from + i),
      namespace: 'orders',
    }));
    await opened.ledger.admin.enableKeyManagementMany(scopes, { concurrency: 128 });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await opened.close();
  return n / seconds;
}

async function bench(): Promise<BenchResult> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const started = process.hrtime.bigint();
  for (const n of SIZES) {
    const dir = `/tmp/keyledger-scale-${n}`;
    const t0 = process.hrtime.bigint();
    const rate = await build(dir, n);
    if (rate !== null) {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      rows.push({
        metric: `${n}: bulk enable rate (build ${s.toFixed(0)} s)`,
        value: `${rate.toFixed(0)}/s`,
      });
    } else notes.push(`${n}: reused the ledger built earlier in ${dir}`);
    const scope = `${custodian(Math.floor(n / 2))}:orders`;
    for (const command of ['show-key-status', 'rotate-managed-key']) {
      timedRun([CLI, command, scope], dir); // warm the page cache
      const r = timedRun([CLI, command, scope], dir);
      rows.push({
        metric: `${n}: CLI ${command} (wall, CPU, peak RSS)`,
        value: `${r.seconds.toFixed(2)} s, ${r.cpu.toFixed(2)} s CPU, ${r.rssMb.toFixed(0)} MB`,
        target: `< ${TARGET_S} s, < ${TARGET_MB} MB`,
        met: r.seconds < TARGET_S && r.rssMb < TARGET_MB,
      });
    }
    const open = timedRun(
      ['--import', 'tsx', fileURLToPath(import.meta.url), 'open', dir],
      fileURLToPath(new URL('../..', import.meta.url)),
    );
    // The child prints the time of Ledger.open itself; the process figures add Node, tsx's
    // compilation of the sources, the imports and the close.
    const openSeconds = Number(open.stdout.trim().split('\n').at(-1));
    rows.push({
      metric: `${n}: Ledger.open, whole view (Ledger.open alone; process wall, CPU, peak RSS)`,
      value: `${openSeconds.toFixed(2)} s; ${open.seconds.toFixed(2)} s, ${open.cpu.toFixed(2)} s CPU, ${open.rssMb.toFixed(0)} MB`,
      ...(n >= 1_000_000 ? { target: '< 10 s', met: openSeconds < 10 } : {}),
    });
    const db = join(dir, '.keyledger', 'ledger.db');
    const bytes = statSync(db).size + (existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0);
    rows.push({
      metric: `${n}: ledger file per scope`,
      value: `${(bytes / n).toFixed(0)} B (${(bytes / 2 ** 20).toFixed(0)} MB)`,
    });
  }
  notes.push(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (2 cores, shared)`,
  );
  return {
    bench: 'scale',
    machine: machineInfo(),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    rows,
    notes,
  };
}

if (process.argv[2] === 'open') {
  const opened = await openLibrary(process.argv[3] ?? '.');
  await opened.close();
  process.stdout.write(`${opened.openSeconds}\n`);
} else if (process.argv[2] === 'build') {
  // Builds one size alone (the 1M ledger takes a while): `node --import tsx scale.ts build 1000000`.
  const n = Number(process.argv[3]);
  const t0 = process.hrtime.bigint();
  const rate = await build(`/tmp/keyledger-scale-${n}`, n);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(rate === null ? 'already built' : `${n} scopes: ${rate.toFixed(0)}/s, ${s.toFixed(0)} s`);
} else {
  await main(import.meta.url, 'scale', bench);
}
