/**
 * What the benchmarks share: machine info, statistics, a seeded RNG, a keystore-backed generated
 * provider (as the sqlite tests set one up), and the result format the runner collects.
 *
 * Benchmarks report figures and ratios against a baseline measured in the same process; they never
 * assert timings. Each bench file runs alone (`node --import tsx scripts/bench/<name>.ts`) or under
 * scripts/bench/run.ts, which runs each in its own process and prints one table.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Observable } from 'rxjs';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { writePkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../../src/store/eventStore.js';

export const KEYSTORE_PASSWORD_ENV = 'KEYLEDGER_BENCH_PW';
export const KEYSTORE_PASSWORD = 'bench-password';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly os: string;
  readonly date: string;
}

export function machineInfo(): Machine {
  const all = cpus();
  return {
    cpu: all[0]?.model ?? 'unknown',
    cores: all.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${platform()} ${release()}`,
    date: new Date().toISOString(),
  };
}

export function describeMachine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}, ${m.date}`;
}

/** One figure of a bench. `target`/`met` only where the issue sets a target. */
export interface Row {
  readonly metric: string;
  readonly value: string;
  readonly target?: string;
  readonly met?: boolean;
}

export interface BenchResult {
  readonly bench: string;
  readonly machine: Machine;
  readonly seconds: number;
  readonly rows: readonly Row[];
  readonly notes: readonly string[];
}

export function printTable(rows: readonly Row[], title?: string): void {
  const head = ['metric', 'value', 'target', 'met'];
  const cells = rows.map((r) => [
    r.metric,
    r.value,
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) => c.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ');
  if (title !== undefined) console.log(`\n${title}`);
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const c of cells) console.log(line(c));
}

export function printResult(result: BenchResult): void {
  printTable(result.rows, `== ${result.bench} (${result.seconds.toFixed(1)} s)`);
  for (const note of result.notes) console.log(`  note: ${note}`);
}

/** Marks the JSON line a bench prints for the runner. */
export const RESULT_MARKER = 'BENCH_RESULT ';

/**
 * Runs `bench` when its file is the entry point: prints machine info and the table, and, for the
 * runner, one JSON line.
 */
export async function main(moduleUrl: string, name: string, bench: () => Promise<BenchResult>) {
  if (process.argv[1] === undefined || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  console.log(`${name} — ${describeMachine(machineInfo())}`);
  const result = await bench();
  printResult(result);
  if (process.env.BENCH_JSON === '1') {
    console.log(`${RESULT_MARKER}${JSON.stringify(result)}`);
  }
}

/** Wall time of `work`, in seconds, and its result. */
export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const start = process.hrtime.bigint();
  const value = await work();
  return { value, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Nearest-rank quantile (q in [0, 1]) of unsorted values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

export function fmtOps(opsPerSecond: number): string {
  if (opsPerSecond >= 1e6) return `${(opsPerSecond / 1e6).toFixed(2)} M ops/s`;
  if (opsPerSecond >= 1e3) return `${(opsPerSecond / 1e3).toFixed(1)} k ops/s`;
  return `${opsPerSecond.toFixed(0)} ops/s`;
}

export function fmtMs(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`;
}

/** mulberry32: small, fast, seeded; good enough to pick scopes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A base64 custodian for tenant `i`. */
export function custodian(i: number): string {
  return Buffer.from(`tenant-${i}`).toString('base64');
}

/** A temporary folder with a PKCS#12 keystore holding the system key `stk`. */
export interface BenchKeystore {
  readonly dir: string;
  readonly path: string;
  provider(): GeneratedKeyProvider;
  remove(): void;
}

/** `aliases`: more secret keys in the keystore besides `stk` (for a keystore-served DEK). */
export function makeKeystore(prefix: string, aliases: readonly string[] = []): BenchKeystore {
  const dir = mkdtempSync(join(tmpdir(), `keyledger-bench-${prefix}-`));
  const path = join(dir, 'keystore.p12');
  const keys = ['stk', ...aliases].map((alias) => ({ alias, key: SecretBytes.adopt(randomBytes(32)) }));
  writeFileSync(path, writePkcs12SecretKeys(keys, KEYSTORE_PASSWORD, { iterations: 1000 }));
  for (const { key } of keys) key.zero();
  process.env[KEYSTORE_PASSWORD_ENV] = KEYSTORE_PASSWORD;
  return {
    dir,
    path,
    provider: () => keystoreProvider(path, dir),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** DEKs generated by the ledger under the keystore's `stk` (the password comes from the env). */
export function keystoreProvider(path: string, baseDir: string): GeneratedKeyProvider {
  const keystore = new KeystoreKeyProvider(
    resolveKeystoreConfig({ path, password: { env: KEYSTORE_PASSWORD_ENV }, systemKeyAlias: 'stk' }, baseDir),
  );
  return new GeneratedKeyProvider({ systemKeys: keystore });
}

/**
 * Wraps a store so a bench can see, without touching src, when appends complete and when
 * subscribers have applied what a subscription delivered: `onAppended` runs right after the inner
 * append resolves; `onDelivered` right after the subscriber's `next` returned (the projector applies
 * events and their cache invalidations synchronously inside `next`). `loadSnapshots: false` makes
 * a ledger replay from the first event; `saveSnapshots: false` drops the snapshots it saves.
 */
export function observedStore(
  inner: EventStore,
  hooks: {
    /** After the append resolved; `returnedAt`: when the store's append call returned its promise (hrtime). */
    onAppended?: (position: bigint, returnedAt: bigint) => void;
    onDelivered?: (event: RecordedEvent) => void;
    loadSnapshots?: boolean;
    saveSnapshots?: boolean;
  },
): EventStore {
  return {
    append: async (stream, events, expected) => {
      const pending = inner.append(stream, events, expected);
      // The memory store commits inside the call (its append has no await), and its subscribers
      // may apply before `pending`'s continuation runs: the call's return is its commit.
      const returnedAt = process.hrtime.bigint();
      const result = await pending;
      hooks.onAppended?.(result.position, returnedAt);
      return result;
    },
    readStream: (stream, options) => inner.readStream(stream, options),
    readAll: (options?: ReadAllOptions) => inner.readAll(options),
    subscribe: (options) => {
      const source = inner.subscribe(options);
      const onDelivered = hooks.onDelivered;
      if (onDelivered === undefined) return source;
      return new Observable<RecordedEvent>((subscriber) => {
        const inner$ = source.subscribe({
          next: (event) => {
            subscriber.next(event);
            onDelivered(event);
          },
          error: (error) => subscriber.error(error),
          complete: () => subscriber.complete(),
        });
        return () => inner$.unsubscribe();
      });
    },
    headPosition: () => inner.headPosition(),
    deleteStream: (stream) => inner.deleteStream(stream),
    loadSnapshot: (name) =>
      hooks.loadSnapshots === false ? Promise.resolve(null) : inner.loadSnapshot(name),
    saveSnapshot: (name, snapshot) =>
      hooks.saveSnapshots === false ? Promise.resolve() : inner.saveSnapshot(name, snapshot),
    saveSnapshotRows: (name, header, rows, base) =>
      hooks.saveSnapshots === false
        ? Promise.resolve(false)
        : inner.saveSnapshotRows(name, header, rows, base),
    snapshotRowReadAlone: inner.snapshotRowReadAlone,
    loadSnapshotRow: (name, key) =>
      hooks.loadSnapshots === false ? Promise.resolve(null) : inner.loadSnapshotRow(name, key),
    readSnapshotRows: (name) => inner.readSnapshotRows(name),
    close: () => inner.close(),
  };
}
