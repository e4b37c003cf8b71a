/**
 * (b) Invalidation latency: a rotation appended → applied (cache invalidated) in every subscriber.
 *
 * In-process: one store, a writer Ledger and SUBSCRIBERS other Ledger instances on it, each with the
 * scope's resolution warm in L1. The moment each append commits is taken
 * (`process.hrtime.bigint()`) when the store delivers the event to a probe subscribed before the
 * ledgers; once the append has resolved, every ledger's `waitForPosition(position)` is registered;
 * the latency is until that wait resolves (the last of them: every subscriber). Measured on
 * the memory store and on one SqliteEventStore shared by the ledgers of the process.
 *
 * Across processes: scripts/bench/invalidationCrossProcess.ts. What ran inside the in-process
 * windows: scripts/bench/invalidationTrace.ts (BENCH_INVALIDATION_TRACE).
 */
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  type PerformanceEntry,
  PerformanceObserver,
  constants as perfConstants,
  performance,
} from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResolutionTarget } from '../../src/crypto/keySource.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import {
  type BenchKeystore,
  type BenchResult,
  custodian,
  fmtMs,
  machineInfo,
  main,
  makeKeystore,
  observedStore,
  quantile,
  type Row,
} from './common.js';
import { CHILDREN, crossProcess, GAP_MS, N_CROSS, POLL_INTERVALS } from './invalidationCrossProcess.js';
import { threadDeltas, threadStats, WindowTracer } from './invalidationTrace.js';

const N_IN_PROCESS = 500;
/**
 * Rotations before the measured ones, per variant: V8 compiles the path's functions with TurboFan
 * on its worker threads over the first few hundred rotations of a process, and on this 2-core VM
 * those threads take the main thread's CPU inside windows (BENCHMARKS.md, issue 17, fourth
 * session). BENCH_INVALIDATION_WARMUP sets another count (20 was the old one); the warm-up's own
 * latencies are reported too.
 */
const WARMUP_ROTATIONS = warmupRotations(process.env.BENCH_INVALIDATION_WARMUP);
const SUBSCRIBERS = 3;
/** Rotations spread over this many scopes keep each scope's history short (see BENCHMARKS.md). */
const SPREAD_SCOPES = 50;
const NS = 'orders';
/**
 * BENCH_INVALIDATION_TRACE=1: profile the measured rotations and print, for the slowest windows,
 * what ran inside them and what each thread of the process did (scripts/bench/invalidationTrace.ts);
 * `threads`: the threads only, without the profiler. Tracing slows every rotation: the figures of
 * a traced run are not the bench's.
 */
const TRACE = process.env.BENCH_INVALIDATION_TRACE ?? '';

function warmupRotations(text: string | undefined): number {
  const n = text === undefined ? 1500 : Number(text);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error('BENCH_INVALIDATION_WARMUP must be a whole number ≥ 0');
  return n;
}

/**
 * The in-process variants in the order run: by default memory (1 scope), sqlite (1 scope), memory
 * (SPREAD_SCOPES scopes). BENCH_INVALIDATION_VARIANTS, e.g. `memory-50,memory-1`, picks and orders
 * them (the first variant of a process is the one the JIT is still compiling for).
 */
function inProcessVariants(text: string | undefined): (readonly ['memory' | 'sqlite', number])[] {
  if (text === undefined)
    return [
      ['memory', 1],
      ['sqlite', 1],
      ['memory', SPREAD_SCOPES],
    ];
  return text.split(',').map((item) => {
    const match = /^(memory|sqlite)-([1-9][0-9]*)$/.exec(item.trim());
    if (match === null) throw new Error(`BENCH_INVALIDATION_VARIANTS: ${item} is not memory-N or sqlite-N`);
    return [match[1] as 'memory' | 'sqlite', Number(match[2])] as const;
  });
}

interface Latencies {
  /** Per rotation: append → applied in every subscriber (the slowest of them), ms. */
  readonly every: number[];
  /** The same for the warm-up rotations (not measured otherwise): the JIT compiles during these. */
  readonly warmup: number[];
  /** Per rotation: append → applied in one subscriber that is not the writer, ms. */
  readonly one: number[];
  /** Per rotation: append → the admin call returned (the writer's own apply included), ms. */
  readonly returned: number[];
  /**
   * Per rotation: the process's CPU time (all threads, GC included) from the commit until every
   * subscriber applied, ms: the work in `every` without the time the OS gave to other processes.
   */
  readonly cpu: number[];
  /** Per rotation: garbage-collection pauses (ms) that started inside its window (commit → last apply). */
  readonly gcInWindow: number[];
  /** Scavenges (minor GCs) during the measured rotations, in or out of a window. */
  readonly scavenges: number;
  /** BENCH_INVALIDATION_TRACE=1: what ran in the slowest windows. */
  readonly trace: string[];
}

export async function inProcess(
  keystore: BenchKeystore,
  kind: 'memory' | 'sqlite',
  scopes: number,
): Promise<Latencies> {
  const base: EventStore =
    kind === 'memory'
      ? new MemoryEventStore()
      : SqliteEventStore.open(join(keystore.dir, `in-process-${scopes}.db`), {});
  const cust = custodian(1);
  const appendedAt = new Map<bigint, bigint>();
  const appliedAt = new Map<bigint, bigint[]>();
  /** Per position: the process's CPU time (µs, every thread) at the commit and when the last ledger applied. */
  const cpuAt = new Map<bigint, { committed: number; applied: number }>();
  /** Per position: the window in performance.now() time, to place the GC pauses in it afterwards. */
  const windowAt = new Map<bigint, { from: number; to: number }>();
  /** Per position, with TRACE: the window in hrtime (ns), commit → last apply. */
  const hrWindowAt = new Map<bigint, { from: bigint; to: bigint }>();
  const cpuMicros = (u: NodeJS.CpuUsage) => u.user + u.system;
  // The commit's moment, the earliest of: the memory store's append call returning (it commits
  // inside the call), the store handing the event to this probe (subscribed before any ledger, so
  // notified first; sqlite commits on a later turn), the append's promise resolving. A subscriber
  // may apply before the promise resolves, so that alone would be no measure.
  const earliest = (position: bigint, at: bigint) => {
    const known = appendedAt.get(position);
    if (known === undefined || at < known) appendedAt.set(position, at);
  };
  const probe = base.subscribe({ after: await base.headPosition() }).subscribe((event) => {
    earliest(event.position, process.hrtime.bigint());
    cpuAt.set(event.position, { committed: cpuMicros(process.cpuUsage()), applied: 0 });
    const now = performance.now();
    windowAt.set(event.position, { from: now, to: now });
  });
  const ledgers: Ledger[] = [];
  const writerStore = observedStore(base, {
    onAppended: (position, returnedAt) => {
      earliest(position, kind === 'memory' ? returnedAt : process.hrtime.bigint());
      const cpu = cpuAt.get(position);
      // Indexed like `ledgers`: 0 is the writer.
      const times: bigint[] = [];
      appliedAt.set(position, times);
      for (const [j, ledger] of ledgers.entries()) {
        void ledger.waitForPosition(position).then(() => {
          times[j] = process.hrtime.bigint();
          if (cpu !== undefined) cpu.applied = Math.max(cpu.applied, cpuMicros(process.cpuUsage()));
          const w = windowAt.get(position);
          if (w !== undefined) w.to = Math.max(w.to, performance.now());
          if (TRACE !== '') {
            const hr = hrWindowAt.get(position) ?? { from: appendedAt.get(position) ?? 0n, to: 0n };
            hr.from = appendedAt.get(position) ?? hr.from;
            if (times[j] !== undefined && (times[j] as bigint) > hr.to) hr.to = times[j] as bigint;
            hrWindowAt.set(position, hr);
          }
        });
      }
    },
  });
  const writer = await Ledger.open({ store: writerStore, provider: keystore.provider() });
  ledgers.push(writer);
  for (let i = 0; i < SUBSCRIBERS; i++) {
    ledgers.push(await Ledger.open({ store: base, provider: keystore.provider() }));
  }
  try {
    await writer.initialise();
    const namespaces = Array.from({ length: scopes }, (_, i) => (scopes === 1 ? NS : `${NS}-${i}`));
    for (const ns of namespaces) await writer.admin.enableKeyManagement(cust, ns);
    await Promise.all(ledgers.map((l) => l.waitForPosition(writer.position)));
    const targetsOf = namespaces.map((ns) => ledgers.map((l) => l.resolver.target(cust, [ns])));
    const every: number[] = [];
    const warmup: number[] = [];
    const one: number[] = [];
    const returned: number[] = [];
    const cpu: number[] = [];
    const windows: { from: number; to: number }[] = [];
    const gcs: PerformanceEntry[] = [];
    const gcObserver = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
    const tracer = TRACE === '' ? null : new WindowTracer({ profile: TRACE !== 'threads' });
    /** Per measured rotation: the rotated scope's key count (1 from enabling, one more per rotation). */
    const keysOf = new Map<string, number>(namespaces.map((ns) => [ns, 1]));
    for (let i = -WARMUP_ROTATIONS; i < N_IN_PROCESS; i++) {
      if (i === 0) {
        gcObserver.observe({ entryTypes: ['gc'] });
        await tracer?.start();
        // Lines V8 prints (--trace-opt, --trace-gc, …) between these two belong to the measured rotations.
        if (tracer !== null) writeSync(1, `--- measured rotations start: ${kind}, ${scopes} scope(s)\n`);
      }
      const which = (i + WARMUP_ROTATIONS) % scopes;
      const ns = namespaces[which] as string;
      const targets = targetsOf[which] as ResolutionTarget[];
      for (const [j, l] of ledgers.entries()) await l.resolver.resolveActive(targets[j] as ResolutionTarget);
      // With TRACE, V8's --trace-opt/--trace-gc lines can be placed against the rotations.
      if (tracer !== null && i > 0 && i % 50 === 0) writeSync(1, `--- measured rotation ${i}\n`);
      const threadsBefore = tracer !== null && i >= 0 ? threadStats() : null;
      const rotated = await writer.admin.rotateManagedKey(cust, ns);
      const done = process.hrtime.bigint();
      if (rotated?.position == null) throw new Error('rotation wrote nothing');
      keysOf.set(ns, (keysOf.get(ns) ?? 0) + 1);
      await Promise.all(ledgers.map((l) => l.waitForPosition(rotated.position as bigint)));
      await Promise.resolve();
      const threads = threadsBefore === null ? undefined : threadDeltas(threadsBefore, threadStats());
      const t0 = appendedAt.get(rotated.position);
      const times = appliedAt.get(rotated.position) ?? [];
      if (t0 === undefined || times.filter((t) => t !== undefined).length !== ledgers.length) {
        throw new Error('missing timings');
      }
      const ms = (t: bigint) => Number(t - t0) / 1e6;
      if (i < 0) warmup.push(Math.max(...times.map(ms)));
      else {
        every.push(Math.max(...times.map(ms)));
        one.push(ms(times[1] as bigint));
        returned.push(ms(done));
        const c = cpuAt.get(rotated.position);
        if (c !== undefined) cpu.push((c.applied - c.committed) / 1000);
        const w = windowAt.get(rotated.position);
        if (w !== undefined) windows.push(w);
        const hr = hrWindowAt.get(rotated.position);
        if (tracer !== null && hr !== undefined)
          tracer.add({ rotation: i, keys: keysOf.get(ns) ?? 0, from: hr.from, to: hr.to, gcMs: 0, threads });
      }
      // Untimed check: no subscriber serves the old key once the position is applied.
      const other = ledgers[1] as Ledger;
      const now = await other.resolver.resolveActive(targets[1] as ResolutionTarget);
      if (now?.key.keyId !== rotated.key.keyId) throw new Error('a subscriber served a stale key');
      appendedAt.clear();
      appliedAt.clear();
      cpuAt.clear();
      windowAt.clear();
      hrWindowAt.clear();
    }
    if (tracer !== null) writeSync(1, `--- measured rotations end: ${kind}, ${scopes} scope(s)\n`);
    // The observer's entries arrive in a later task.
    await sleep(50);
    gcs.push(...gcObserver.takeRecords());
    gcObserver.disconnect();
    const gcInWindow = windows.map((w) =>
      gcs.filter((g) => g.startTime >= w.from && g.startTime <= w.to).reduce((sum, g) => sum + g.duration, 0),
    );
    const minor = perfConstants.NODE_PERFORMANCE_GC_MINOR;
    const scavenges = gcs.filter(
      (g) => (g as unknown as { detail?: { kind?: number } }).detail?.kind === minor,
    ).length;
    tracer?.attachGc(gcs);
    const trace = tracer === null ? [] : await tracer.stop();
    return { every, warmup, one, returned, cpu, gcInWindow, scavenges, trace };
  } finally {
    probe.unsubscribe();
    for (const l of ledgers) await l.close();
    await base.close();
  }
}

export async function run(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const keystore = makeKeystore('invalidation');
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    for (const [kind, scopes] of inProcessVariants(process.env.BENCH_INVALIDATION_VARIANTS)) {
      const section = process.hrtime.bigint();
      const r = await inProcess(keystore, kind, scopes);
      const label = `in-process (${kind}${scopes === 1 ? '' : `, ${scopes} scopes`})`;
      notes.push(`${label} took ${(Number(process.hrtime.bigint() - section) / 1e9).toFixed(1)} s`);
      for (const line of r.trace) notes.push(`${label} trace: ${line}`);
      const p99 = quantile(r.every, 0.99);
      rows.push(
        { metric: `${label}, every subscriber, p50`, value: fmtMs(quantile(r.every, 0.5)) },
        // Issue 17's target is for the memory store; sqlite keeps the first issue's.
        {
          metric: `${label}, every subscriber, p99`,
          value: fmtMs(p99),
          target: `< ${kind === 'memory' ? 2 : 5} ms`,
          met: p99 < (kind === 'memory' ? 2 : 5),
        },
        { metric: `${label}, every subscriber, max`, value: fmtMs(quantile(r.every, 1)) },
        {
          metric: `${label}, during the ${WARMUP_ROTATIONS} warm-up rotations (JIT compiling), every subscriber, p50/p99/max`,
          value: `${fmtMs(quantile(r.warmup, 0.5))} / ${fmtMs(quantile(r.warmup, 0.99))} / ${fmtMs(quantile(r.warmup, 1))}`,
        },
        {
          metric: `${label}, one non-writer subscriber, p50/p99`,
          value: `${fmtMs(quantile(r.one, 0.5))} / ${fmtMs(quantile(r.one, 0.99))}`,
        },
        {
          metric: `${label}, every subscriber, CPU time in the window, p50/p99/max`,
          value: `${fmtMs(quantile(r.cpu, 0.5))} / ${fmtMs(quantile(r.cpu, 0.99))} / ${fmtMs(quantile(r.cpu, 1))}`,
        },
        {
          metric: `${label}, GC pauses in the window: rotations with one / p99 / max`,
          value: `${r.gcInWindow.filter((ms) => ms > 0).length} of ${r.gcInWindow.length} / ${fmtMs(quantile(r.gcInWindow, 0.99))} / ${fmtMs(quantile(r.gcInWindow, 1))}`,
        },
        {
          metric: `${label}, scavenges during the ${N_IN_PROCESS} measured rotations`,
          value: String(r.scavenges),
        },
        {
          metric: `${label}, append → admin call returned, p50/p99`,
          value: `${fmtMs(quantile(r.returned, 0.5))} / ${fmtMs(quantile(r.returned, 0.99))}`,
        },
      );
    }
    notes.push(
      `in-process: N=${N_IN_PROCESS} measured rotations (after ${WARMUP_ROTATIONS} unmeasured) of one scope (or round-robin over ${SPREAD_SCOPES} scopes), writer + ${SUBSCRIBERS} other Ledger instances on the same store object, each warm in L1 before every rotation`,
    );
    // BENCH_INVALIDATION_PARTS=in-process skips the cross-process part (8 children for ~20 s).
    const crossPolls = process.env.BENCH_INVALIDATION_PARTS === 'in-process' ? [] : POLL_INTERVALS;
    for (const poll of crossPolls) {
      const section = process.hrtime.bigint();
      const r = await crossProcess(keystore, poll);
      notes.push(
        `cross-process (poll ${poll} ms) took ${(Number(process.hrtime.bigint() - section) / 1e9).toFixed(1)} s`,
      );
      const p99 = quantile(r.deltas, 0.99);
      const label = `${CHILDREN} processes, sqlite poll ${poll} ms${poll === 20 ? ' (default)' : ''}`;
      rows.push(
        { metric: `${label}, p50`, value: fmtMs(quantile(r.deltas, 0.5)) },
        { metric: `${label}, p99`, value: fmtMs(p99), target: '< 100 ms', met: p99 < 100 },
        { metric: `${label}, max`, value: fmtMs(quantile(r.deltas, 1)) },
        {
          metric: `${label}, worst child's p99`,
          value: fmtMs(Math.max(...r.perChildP99)),
        },
      );
      notes.push(
        `cross-process poll ${poll} ms: ${r.deltas.length} samples (${N_CROSS} rotations × ${CHILDREN} children), gaps ${GAP_MS[0]}–${GAP_MS[1]} ms; ${CHILDREN} children started in ${r.startupSeconds.toFixed(1)} s`,
      );
    }
    notes.push(
      'cross-process deltas compare two processes’ wall clocks (performance.timeOrigin + performance.now()); the parent sqlite poll interval is the same as the children’s',
    );
  } finally {
    keystore.remove();
  }
  return {
    bench: 'b. Invalidation latency, rotation appended → applied in every subscriber',
    machine: machineInfo(),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    rows,
    notes,
  };
}

await main(import.meta.url, 'invalidation', run);
