/**
 * (f) Streaming envelope encryption (issue 4): 1 GiB through `ledger.envelopeStreams.encryptStream` →
 * `decryptStream` in one process, and the same through the CLI (`keyledger encrypt | keyledger
 * decrypt`), with throughput and peak memory. The target: flat memory for any size.
 *
 * Input is generated lazily: one random 1 MiB block, handed out in 64 KiB pieces (the size fs and
 * pipe streams read) until the total is reached, so the input itself costs no memory. Output is
 * hashed (SHA-256) and compared with the hash of the input, which is computed before the runs. The
 * default chunk size (64 KiB) is used throughout.
 *
 * In-process runs: a 128 MiB round trip (warm-up, and a small size to compare peak memory with), then
 * 1 GiB encrypt-only (ciphertext discarded), then 1 GiB round trips (encrypt → decrypt → hash)
 * repeated while the time budget allows (at most 3; the figure is the median). Memory: `rss` sampled
 * every 10 ms and every 64 pieces, and `process.resourceUsage().maxRSS` (the process's lifetime peak).
 *
 * CLI runs: in a temp dir, `keyledger init` and `keyledger enable-key-management '*'` (the built CLI,
 * dist/src/cli/main.js: run `npm run build` first), then `keyledger encrypt '*' | keyledger decrypt`
 * with this process writing the input into the pipe and hashing what comes out; each CLI process's
 * max RSS from `/usr/bin/time -v` (or, without it, from a preloaded module that records
 * `resourceUsage().maxRSS` at exit). Throughput is the wall time of the whole pipeline, start-up
 * included (start-up alone is measured with empty input). Baseline: the same pipeline with two
 * `node -e 'process.stdin.pipe(process.stdout)'` (the pipe plumbing alone). Empty input, 128 MiB
 * and 1 GiB show whether memory stays flat; the 1 GiB run repeats while the budget allows (≤ 3).
 *
 * "Flat memory" (the target) is read as: the peak at 1 GiB is at most FLAT_SLACK above the
 * peak at 128 MiB.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../../test/helpers/scriptedProvider.js';
import { type BenchResult, machineInfo, main, median, type Row } from './common.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TOTAL = Number(process.env.BENCH_STREAM_BYTES ?? GiB);
const SMALL = Math.min(128 * MiB, TOTAL);
const BLOCK = MiB;
const PIECE = 64 * 1024;
const MAX_REPEATS = 3;
/** Seconds the repeated in-process and CLI runs may take in all; the first run of each always happens. */
const BUDGET_S = Number(process.env.BENCH_STREAM_BUDGET_S ?? 60);
const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const TIME = '/usr/bin/time';
/** The same pipe plumbing without encryption: the CLI's baseline. */
const PASSTHROUGH = `-e 'process.stdin.pipe(process.stdout)'`;
/**
 * "Flat memory": 8× the data (128 MiB → 1 GiB) may not raise the peak by more than this. Memory that
 * grew with the input would add hundreds of MiB.
 */
const FLAT_SLACK = 16 * MiB;

const block = randomBytes(BLOCK);

function fmtMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(0)} MiB`;
}

function fmtMBps(bytes: number, seconds: number): string {
  return `${(bytes / 1e6 / seconds).toFixed(0)} MB/s`;
}

/** The input, lazily: `total` bytes of the repeated block in PIECE-sized pieces. */
async function* input(total: number): AsyncGenerator<Buffer> {
  let sent = 0;
  let pieces = 0;
  while (sent < total) {
    const offset = sent % BLOCK;
    const n = Math.min(PIECE, BLOCK - offset, total - sent);
    yield block.subarray(offset, offset + n);
    sent += n;
    // In-memory streams can run for a long time on microtasks alone: let the RSS sampler run.
    if (++pieces % 64 === 0) await yieldToLoop();
  }
}

/** SHA-256 of `input(total)`, and how long hashing it took. */
function expectedHash(total: number): { hex: string; seconds: number } {
  const started = process.hrtime.bigint();
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; ) {
    const n = Math.min(BLOCK - (sent % BLOCK), total - sent);
    hash.update(block.subarray(sent % BLOCK, (sent % BLOCK) + n));
    sent += n;
  }
  return { hex: hash.digest('hex'), seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** Peak `rss` while `work` runs (sampled on a timer and on demand). */
class RssSampler {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;
  constructor() {
    this.sample();
    this.#timer = setInterval(() => this.sample(), 10);
  }
  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.#peak) this.#peak = rss;
  }
  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.#peak;
  }
}

/** A sink that counts (and optionally hashes) what reaches it. */
function sink(sampler: RssSampler, hash: Hash | null) {
  let bytes = 0;
  let pieces = 0;
  const writable = new Writable({
    highWaterMark: PIECE,
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      hash?.update(chunk);
      if (++pieces % 64 === 0) sampler.sample();
      callback();
    },
  });
  return { writable, bytes: () => bytes };
}

interface InProcessRun {
  readonly seconds: number;
  readonly rssBefore: number;
  readonly rssPeak: number;
  readonly outBytes: number;
  readonly hash: string | null;
}

async function inProcess(ledger: Ledger, total: number, roundTrip: boolean): Promise<InProcessRun> {
  const options = { custodian: '*', namespaces: ['*'] };
  const rssBefore = process.memoryUsage.rss();
  const sampler = new RssSampler();
  const hash = roundTrip ? createHash('sha256') : null;
  const out = sink(sampler, hash);
  const started = process.hrtime.bigint();
  if (roundTrip) {
    await pipeline(
      input(total),
      ledger.envelopeStreams.encryptStream(options),
      ledger.envelopeStreams.decryptStream(),
      out.writable,
    );
  } else {
    await pipeline(input(total), ledger.envelopeStreams.encryptStream(options), out.writable);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    seconds,
    rssBefore,
    rssPeak: sampler.stop(),
    outBytes: out.bytes(),
    hash: hash === null ? null : hash.digest('hex'),
  };
}

function runCli(dir: string, args: readonly string[]): string {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`keyledger ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

interface CliRun {
  readonly seconds: number;
  readonly bytes: number;
  readonly hash: string;
  /** Max RSS of the first and the second command, bytes. */
  readonly maxRss: readonly [number, number];
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * `input(total) | <first> | <second>`, the output hashed here (Node's SHA-256 is several times
 * faster than coreutils' sha256sum on some machines, which would otherwise be the bottleneck), and
 * each command's max RSS. `commands` are the arguments of two `node` invocations.
 */
async function cliPipeline(
  dir: string,
  total: number,
  commands: readonly [string, string] = [`${q(CLI)} encrypt '*'`, `${q(CLI)} decrypt`],
): Promise<CliRun> {
  const haveTime = existsSync(TIME);
  const rssFiles = [join(dir, 'first.rss'), join(dir, 'second.rss')] as const;
  const preload = join(dir, 'maxrss.mjs');
  writeFileSync(
    preload,
    "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(process.env.KL_MAXRSS_OUT, String(process.resourceUsage().maxRSS)));\n",
  );
  const node = q(process.execPath);
  const wrap = (out: string, command: string) =>
    haveTime
      ? `${TIME} -v -o ${q(out)} ${node} ${command}`
      : `KL_MAXRSS_OUT=${q(out)} ${node} --import ${q(pathToFileURL(preload).href)} ${command}`;
  const script = `set -o pipefail; ${wrap(rssFiles[0], commands[0])} | ${wrap(rssFiles[1], commands[1])}`;
  const started = process.hrtime.bigint();
  const child = spawn('bash', ['-c', script], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  const hash = createHash('sha256');
  let bytes = 0;
  child.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
    hash.update(d);
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  await pipeline(input(total), child.stdin);
  const code = await exited;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`CLI pipeline exited with ${code}: ${stderr}`);
  const maxRss = (file: string) => {
    const text = readFileSync(file, 'utf8');
    if (!haveTime) return Number(text.trim()) * 1024;
    const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
    if (match === null) throw new Error(`no max RSS in ${file}`);
    return Number(match[1]) * 1024;
  };
  return { seconds, bytes, hash: hash.digest('hex'), maxRss: [maxRss(rssFiles[0]), maxRss(rssFiles[1])] };
}

/** Whether one more run fits in half the budget (the other half is for the other kind of run). */
function another(spentSeconds: number, runs: number): boolean {
  return spentSeconds + spentSeconds / runs <= BUDGET_S / 2;
}

export async function run(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
  const rows: Row[] = [];
  const notes: string[] = [];
  const expected = expectedHash(TOTAL);
  const expectedSmall = expectedHash(SMALL);
  notes.push(
    `input: ${fmtMiB(TOTAL)} generated lazily (a random 1 MiB block repeated, ${PIECE / 1024} KiB pieces); SHA-256 of the input alone: ${fmtMBps(TOTAL, expected.seconds)}`,
  );

  const store = new MemoryEventStore();
  const ledger = await Ledger.open({
    store,
    provider: new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() }),
    actor: 'bench',
    resolver: { dynamicLookup: false },
  });
  try {
    await ledger.initialise();
    await ledger.admin.enableKeyManagement('*', '*');

    const small = await inProcess(ledger, SMALL, true);
    if (small.hash !== expectedSmall.hex) throw new Error('the small round trip changed the data');
    const encryptOnly = await inProcess(ledger, TOTAL, false);
    const chunks = Math.floor(TOTAL / PIECE) + 1;
    if (encryptOnly.outBytes !== 96 + TOTAL + 16 * chunks) {
      throw new Error(`unexpected ciphertext size ${encryptOnly.outBytes}`);
    }
    const trips: InProcessRun[] = [];
    const tripsStarted = elapsed();
    do {
      const trip = await inProcess(ledger, TOTAL, true);
      if (trip.hash !== expected.hex || trip.outBytes !== TOTAL) {
        throw new Error('the round trip changed the data');
      }
      trips.push(trip);
    } while (trips.length < MAX_REPEATS && another(elapsed() - tripsStarted, trips.length));
    const maxRss = process.resourceUsage().maxRSS * 1024;

    const secs = trips.map((t) => t.seconds);
    rows.push(
      {
        metric: `in-process encrypt only, ${fmtMiB(TOTAL)}`,
        value: `${fmtMBps(TOTAL, encryptOnly.seconds)} (${encryptOnly.seconds.toFixed(2)} s)`,
      },
      {
        metric: `in-process encrypt → decrypt → SHA-256, ${fmtMiB(TOTAL)} (median of ${trips.length})`,
        value: `${fmtMBps(TOTAL, median(secs))} (${secs.map((s) => s.toFixed(2)).join(' / ')} s), hash ok`,
      },
      {
        metric: `in-process round trip, ${fmtMiB(SMALL)}`,
        value: `${fmtMBps(SMALL, small.seconds)} (${small.seconds.toFixed(2)} s), hash ok`,
      },
    );
    const peakOf = (r: InProcessRun) => `${fmtMiB(r.rssPeak)} (before: ${fmtMiB(r.rssBefore)})`;
    const peak1G = Math.max(...trips.map((t) => t.rssPeak));
    const growth = Math.max(...trips.map((t) => t.rssPeak - small.rssPeak));
    rows.push(
      { metric: `peak RSS, round trip ${fmtMiB(SMALL)}`, value: peakOf(small) },
      { metric: `peak RSS, encrypt only ${fmtMiB(TOTAL)}`, value: peakOf(encryptOnly) },
      {
        metric: `peak RSS, round trip ${fmtMiB(TOTAL)}`,
        value: `${fmtMiB(peak1G)} (before: ${fmtMiB(trips[0]?.rssBefore ?? 0)})`,
        // Flat: 8× the data may not cost more than a few chunks' worth of memory more.
        target: `flat: ≤ +${FLAT_SLACK / MiB} MiB over ${fmtMiB(SMALL)}`,
        met: growth <= FLAT_SLACK,
      },
      { metric: 'maxRSS of the bench process (resourceUsage)', value: fmtMiB(maxRss) },
    );
  } finally {
    await ledger.close();
    await store.close();
  }

  if (!existsSync(CLI)) {
    notes.push(`CLI runs skipped: ${CLI} is missing (npm run build)`);
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'keyledger-bench-stream-'));
    try {
      runCli(dir, ['init']);
      runCli(dir, ['enable-key-management', '*']);
      const startup = await cliPipeline(dir, 0);
      const small = await cliPipeline(dir, SMALL);
      if (small.hash !== expectedSmall.hex) throw new Error('the small CLI round trip changed the data');
      const runs: CliRun[] = [];
      const cliStarted = elapsed();
      do {
        const cli = await cliPipeline(dir, TOTAL);
        if (cli.hash !== expected.hex) throw new Error('the CLI round trip changed the data');
        runs.push(cli);
      } while (runs.length < MAX_REPEATS && another(elapsed() - cliStarted, runs.length));
      const passthrough = await cliPipeline(dir, TOTAL, [PASSTHROUGH, PASSTHROUGH]);
      if (passthrough.hash !== expected.hex) throw new Error('the passthrough changed the data');
      const secs = runs.map((r) => r.seconds);
      const peak = (i: 0 | 1) => Math.max(...runs.map((r) => r.maxRss[i]));
      const rss = (r: CliRun) => `${fmtMiB(r.maxRss[0])} / ${fmtMiB(r.maxRss[1])}`;
      const growth = Math.max(peak(0) - small.maxRss[0], peak(1) - small.maxRss[1]);
      rows.push(
        {
          metric: `CLI encrypt | decrypt, ${fmtMiB(TOTAL)} (median of ${runs.length})`,
          value: `${fmtMBps(TOTAL, median(secs))} (${secs.map((s) => s.toFixed(2)).join(' / ')} s), hash ok`,
        },
        {
          metric: `baseline: node passthrough | node passthrough, ${fmtMiB(TOTAL)}`,
          value: `${fmtMBps(TOTAL, passthrough.seconds)} (${passthrough.seconds.toFixed(2)} s); CLI ÷ passthrough ${(passthrough.seconds / median(secs)).toFixed(2)}×`,
        },
        { metric: 'CLI encrypt | decrypt, empty input (start-up)', value: `${startup.seconds.toFixed(2)} s` },
        { metric: 'CLI max RSS encrypt / decrypt, empty input', value: rss(startup) },
        { metric: `CLI max RSS encrypt / decrypt, ${fmtMiB(SMALL)}`, value: rss(small) },
        {
          metric: `CLI max RSS encrypt / decrypt, ${fmtMiB(TOTAL)}`,
          value: `${fmtMiB(peak(0))} / ${fmtMiB(peak(1))}`,
          target: `flat: ≤ +${FLAT_SLACK / MiB} MiB over ${fmtMiB(SMALL)}`,
          met: growth <= FLAT_SLACK,
        },
        { metric: `max RSS of the passthroughs, ${fmtMiB(TOTAL)}`, value: rss(passthrough) },
      );
      notes.push(
        `CLI max RSS from ${existsSync(TIME) ? '/usr/bin/time -v' : 'a preloaded resourceUsage().maxRSS recorder'}; store sqlite (keyledger init defaults), key at custodian '*', namespace '*'`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  notes.push('chunk size 64 KiB (the default); MB/s = plaintext bytes (10^6) per second');
  return {
    bench: 'f. Streaming envelope encryption, 1 GiB in-process and through the CLI',
    machine: machineInfo(),
    seconds: elapsed(),
    rows,
    notes,
  };
}

await main(import.meta.url, 'streaming', run);
