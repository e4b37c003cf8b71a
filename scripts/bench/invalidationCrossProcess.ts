/**
 * (b) Invalidation latency across processes, for scripts/bench/invalidation.ts: CHILDREN child
 * processes (scripts/bench/invalidationChild.ts) on one sqlite file, each a Ledger subscribed to
 * it; the parent rotates N_CROSS times with random gaps; the parent takes the wall-clock time each
 * append completed and each child the wall-clock time it applied each position
 * (`performance.timeOrigin + performance.now()` on both sides).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Ledger } from '../../src/ledger/ledger.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import {
  type BenchKeystore,
  custodian,
  KEYSTORE_PASSWORD,
  KEYSTORE_PASSWORD_ENV,
  observedStore,
  quantile,
  seededRandom,
} from './common.js';

export const N_CROSS = 200;
export const CHILDREN = 8;
/** The sqlite adapter's default poll interval, and a faster one for comparison. */
export const POLL_INTERVALS = [20, 5];
export const GAP_MS: readonly [number, number] = [10, 40];
const CHILD = fileURLToPath(new URL('./invalidationChild.ts', import.meta.url));
const NS = 'orders';

/** A bench child, driven by lines. */
class Child {
  readonly #process: ChildProcessWithoutNullStreams;
  readonly #pending: ((line: string) => void)[] = [];
  readonly #buffered: string[] = [];
  stderr = '';

  constructor(args: string[]) {
    this.#process = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      env: { ...process.env, [KEYSTORE_PASSWORD_ENV]: KEYSTORE_PASSWORD },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#process.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    createInterface({ input: this.#process.stdout }).on('line', (line) => {
      const next = this.#pending.shift();
      if (next) next(line);
      else this.#buffered.push(line);
    });
  }

  async next<T>(): Promise<T> {
    const line =
      this.#buffered.shift() ??
      (await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`bench child timed out: ${this.stderr}`)), 30_000);
        this.#pending.push((received) => {
          clearTimeout(timer);
          resolve(received);
        });
      }));
    const parsed = JSON.parse(line) as T & { error?: string };
    if (parsed.error !== undefined) throw new Error(`bench child: ${parsed.error}`);
    return parsed;
  }

  ask<T>(command: string): Promise<T> {
    this.#process.stdin.write(`${command}\n`);
    return this.next<T>();
  }

  /** Asks the child to exit; kills it if it has not within a second. Never throws. */
  async stop(): Promise<void> {
    if (this.#process.exitCode !== null || this.#process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#process.once('exit', () => resolve()));
    this.#process.stdin.end('exit\n');
    await Promise.race([exited, sleep(1000, undefined, { ref: false })]);
    if (this.#process.exitCode === null && this.#process.signalCode === null) this.#process.kill('SIGKILL');
  }
}

interface CrossResult {
  readonly deltas: number[];
  readonly perChildP99: number[];
  readonly startupSeconds: number;
}

export async function crossProcess(keystore: BenchKeystore, pollIntervalMs: number): Promise<CrossResult> {
  const path = join(keystore.dir, `cross-${pollIntervalMs}.db`);
  const sqlite = SqliteEventStore.open(path, { pollIntervalMs });
  const appendedAt = new Map<number, number>();
  const store = observedStore(sqlite, {
    onAppended: (position) => appendedAt.set(Number(position), performance.timeOrigin + performance.now()),
  });
  const ledger = await Ledger.open({ store, provider: keystore.provider() });
  const cust = custodian(2);
  const children: Child[] = [];
  try {
    await ledger.initialise();
    await ledger.admin.enableKeyManagement(cust, NS);
    const startup = process.hrtime.bigint();
    for (let i = 0; i < CHILDREN; i++) {
      children.push(new Child([path, keystore.path, String(pollIntervalMs), cust, NS]));
    }
    await Promise.all(children.map((c) => c.next()));
    const startupSeconds = Number(process.hrtime.bigint() - startup) / 1e9;
    await Promise.all(children.map((c) => c.ask(`wait ${ledger.position}`)));
    await Promise.all(children.map((c) => c.ask('warm')));

    const random = seededRandom(pollIntervalMs);
    const rotations: number[] = [];
    let lastKey = '';
    for (let i = 0; i < N_CROSS; i++) {
      const rotated = await ledger.admin.rotateManagedKey(cust, NS);
      if (rotated?.position == null) throw new Error('rotation wrote nothing');
      rotations.push(Number(rotated.position));
      lastKey = rotated.key.keyId;
      await sleep(GAP_MS[0] + random() * (GAP_MS[1] - GAP_MS[0]));
    }
    await Promise.all(children.map((c) => c.ask(`wait ${ledger.position}`)));
    const warmed = await Promise.all(children.map((c) => c.ask<{ keyId: string }>('warm')));
    if (warmed.some((w) => w.keyId !== lastKey)) throw new Error('a child resolved a stale key');
    const reports = await Promise.all(
      children.map((c) => c.ask<{ positions: number[]; times: number[] }>('report')),
    );
    const deltas: number[] = [];
    const perChildP99: number[] = [];
    for (const report of reports) {
      const applied = new Map(report.positions.map((p, i) => [p, report.times[i] as number]));
      const mine: number[] = [];
      for (const position of rotations) {
        const t0 = appendedAt.get(position);
        const t1 = applied.get(position);
        if (t0 === undefined || t1 === undefined) throw new Error(`no timing for position ${position}`);
        mine.push(t1 - t0);
      }
      deltas.push(...mine);
      perChildP99.push(quantile(mine, 0.99));
    }
    return { deltas, perChildP99, startupSeconds };
  } finally {
    // Stopped (killed if need be) whatever happened.
    await Promise.all(children.map((c) => c.stop()));
    await ledger.close();
    await sqlite.close();
  }
}
