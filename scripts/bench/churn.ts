/**
 * (c) Resolution under churn: 1M `resolveActive` lookups over 100k scopes with the default L1 size
 * (1000 keys, 100 resolutions), for a skewed (Zipf s=1.0, seeded) and a uniform distribution; hit
 * rate from `metrics()` and ops/s. The baseline is the hit rate a plain `lru-cache` of the same size
 * reaches on the very same sequence of scopes.
 * (d) Replay, for the record: `Ledger.open` catching up over the events (c) created.
 *
 * The 100k scopes are enabled through the admin API on the memory store (one KeyMaterialWrapped and
 * one KeyManagementEnabled event each). The ledgers run with periodic snapshots off
 * (`snapshotEvery: 1e9`): with the default (a full snapshot of the view every 1000 events, built and
 * saved on the event loop) the setup and the replay each take ~100 s instead of ~10 s and ~2 s (see
 * BENCHMARKS.md); what one such snapshot costs at 100k scopes is measured instead.
 * `BENCH_FULL=1` also runs setup and replay with the default.
 */

import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { keymetaToSnapshot } from '../../projections/keymetaSnapshot.js';
import { systemKeysToSnapshot } from '../../projections/systemKeys.js';
import type { ResolutionTarget } from '../../src/crypto/keySource.js';
import { DEFAULT_PREFIX } from '../../src/journal/streamNames.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { LedgerProjector } from '../../src/ledger/ledgerProjector.js';
import type { ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import type { EventStore, Snapshot } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import {
  type BenchKeystore,
  type BenchResult,
  custodian,
  fmtMs,
  fmtOps,
  machineInfo,
  main,
  makeKeystore,
  observedStore,
  quantile,
  type Row,
  seededRandom,
  timed,
} from './common.js';

const CUSTODIANS = 1000;
const NAMESPACES = 100;
const SCOPES = CUSTODIANS * NAMESPACES;
const LOOKUPS = 1_000_000;
const WARMUP = 50_000;
const ZIPF_S = 1.0;
const SEED = 20261124;
const NO_SNAPSHOTS = 1e9;
const BIG_L1 = 10_000;
const FULL = process.env.BENCH_FULL === '1';
/** 2 events each: crosses one 1000-event snapshot boundary of a freshly opened subscriber. */
const ROTATIONS_AT_SCALE = 600;

/** Indexes of LOOKUPS scopes drawn from Zipf(s) over ranks, ranks shuffled over scopes (seeded). */
function zipfSequence(n: number, count: number, s: number, random: () => number): Int32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    sum += 1 / (r + 1) ** s;
    cdf[r] = sum;
  }
  const byRank = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = byRank[i] as number;
    byRank[i] = byRank[j] as number;
    byRank[j] = t;
  }
  const out = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const u = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    out[k] = byRank[lo] as number;
  }
  return out;
}

function uniformSequence(n: number, count: number, random: () => number): Int32Array {
  const out = new Int32Array(count);
  for (let k = 0; k < count; k++) out[k] = Math.floor(random() * n);
  return out;
}

/** The hit rate of a plain LRU of `max` entries on the sequence (after the same warm-up). */
function lruHitRate(sequence: Int32Array, warmup: Int32Array, max: number): number {
  const lru = new LRUCache<number, true>({ max });
  for (const i of warmup) if (!lru.get(i)) lru.set(i, true);
  let hits = 0;
  for (const i of sequence) {
    if (lru.get(i)) hits++;
    else lru.set(i, true);
  }
  return hits / sequence.length;
}

interface Lookups {
  readonly opsPerSecond: number;
  readonly hitRate: number;
  readonly l2Hits: number;
  readonly evictions: number;
}

async function lookups(
  ledger: Ledger,
  targets: readonly ResolutionTarget[],
  sequence: Int32Array,
  warmup: Int32Array,
): Promise<Lookups> {
  const resolver = ledger.resolver;
  for (const i of warmup) await resolver.resolveActive(targets[i] as ResolutionTarget);
  const before = resolver.metrics();
  let found = 0;
  const { seconds } = await timed(async () => {
    for (const i of sequence) {
      if ((await resolver.resolveActive(targets[i] as ResolutionTarget)) !== null) found++;
    }
  });
  const after = resolver.metrics();
  if (found !== sequence.length) throw new Error(`${sequence.length - found} lookups found no key`);
  const hits = after.l1.hits - before.l1.hits;
  const misses = after.l1.misses - before.l1.misses;
  return {
    opsPerSecond: sequence.length / seconds,
    hitRate: hits / (hits + misses),
    l2Hits: after.l2.hits - before.l2.hits,
    evictions: after.l1.evictions - before.l1.evictions,
  };
}

function pct(rate: number): string {
  return `${(rate * 100).toFixed(2)} %`;
}

async function enableScopes(keystore: BenchKeystore, store: EventStore): Promise<number> {
  const ledger = await Ledger.open({
    store,
    provider: keystore.provider(),
    snapshotEvery: FULL ? undefined : NO_SNAPSHOTS,
  });
  const { seconds } = await timed(async () => {
    await ledger.initialise();
    for (let c = 0; c < CUSTODIANS; c++) {
      const cust = custodian(c);
      for (let n = 0; n < NAMESPACES; n++) await ledger.admin.enableKeyManagement(cust, `ns-${n}`);
    }
  });
  // Saves a snapshot at the head, which (d) restores from.
  await ledger.close();
  return seconds;
}

/**
 * What one periodic snapshot costs at this size: the projector builds it synchronously inside the
 * event application that reaches the interval, and the embedded stores save it synchronously too.
 */
async function snapshotCost(store: EventStore, dir: string, provider: ManagedKeyProvider): Promise<Row[]> {
  const projector = new LedgerProjector(store, DEFAULT_PREFIX, {
    snapshotName: `${DEFAULT_PREFIX}keymeta`,
    snapshotEvery: NO_SNAPSHOTS,
    provider,
    systemStream: `${DEFAULT_PREFIX}system`,
  });
  await projector.start();
  const rows: Row[] = [];
  const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
  try {
    let start = process.hrtime.bigint();
    const snapshot: Snapshot = {
      position: projector.position,
      state: {
        keymeta: keymetaToSnapshot(projector.keymeta),
        systemKeys: systemKeysToSnapshot(projector.systemKeys),
      },
    };
    const build = ms(start);
    const bytes = Buffer.byteLength(JSON.stringify(snapshot.state));
    const memory = new MemoryEventStore();
    start = process.hrtime.bigint();
    await memory.saveSnapshot('probe', snapshot);
    const memorySave = ms(start);
    await memory.close();
    const sqlite = SqliteEventStore.open(join(dir, 'snapshot-probe.db'));
    start = process.hrtime.bigint();
    await sqlite.saveSnapshot('probe', snapshot);
    const sqliteSave = ms(start);
    await sqlite.close();
    rows.push(
      {
        metric: `d. one periodic snapshot at ${SCOPES} scopes: build (keymetaToSnapshot), size`,
        value: `${build.toFixed(0)} ms, ${(bytes / 2 ** 20).toFixed(1)} MiB JSON`,
      },
      {
        metric: 'd. one periodic snapshot: save, memory store / sqlite store (synchronous)',
        value: `${memorySave.toFixed(0)} ms / ${sqliteSave.toFixed(0)} ms`,
      },
    );
  } finally {
    await projector.stop();
  }
  return rows;
}

/**
 * Invalidation latency (as in invalidation.ts, in-process) on this 100k-scope ledger: a writer and
 * a subscriber Ledger, both restored from the snapshot the setup saved; the subscriber keeps the
 * default snapshotEvery (1000), so ROTATIONS_AT_SCALE rotations of distinct scopes (2 events each)
 * cross one of its snapshot boundaries.
 */
async function latencyAtScale(keystore: BenchKeystore, memory: EventStore): Promise<Row[]> {
  const appendedAt = new Map<bigint, bigint>();
  const appliedAt = new Map<bigint, bigint>();
  let subscriber: Ledger | undefined;
  const writerStore = observedStore(memory, {
    saveSnapshots: false,
    onAppended: (position) => {
      appendedAt.set(position, process.hrtime.bigint());
      void subscriber?.waitForPosition(position).then(() => appliedAt.set(position, process.hrtime.bigint()));
    },
  });
  const writer = await Ledger.open({
    store: writerStore,
    provider: keystore.provider(),
    snapshotEvery: NO_SNAPSHOTS,
  });
  subscriber = await Ledger.open({ store: memory, provider: keystore.provider() });
  const applied: number[] = [];
  const returned: number[] = [];
  try {
    for (let i = 0; i < ROTATIONS_AT_SCALE; i++) {
      const rotated = await writer.admin.rotateManagedKey(custodian(i), `ns-${i % NAMESPACES}`);
      const done = process.hrtime.bigint();
      if (rotated?.position == null) throw new Error('rotation wrote nothing');
      await subscriber.waitForPosition(rotated.position);
      await Promise.resolve();
      const t0 = appendedAt.get(rotated.position);
      const t1 = appliedAt.get(rotated.position);
      if (t0 === undefined || t1 === undefined) throw new Error('missing timings');
      applied.push(Number(t1 - t0) / 1e6);
      returned.push(Number(done - t0) / 1e6);
      appendedAt.clear();
      appliedAt.clear();
    }
  } finally {
    await writer.close();
    await subscriber.close();
  }
  const slow = applied.filter((ms) => ms > 100).length;
  return [
    {
      metric: `c. ${ROTATIONS_AT_SCALE} rotations at ${SCOPES} scopes, append → applied (subscriber, default snapshots), p50/p99/max`,
      value: `${fmtMs(quantile(applied, 0.5))} / ${fmtMs(quantile(applied, 0.99))} / ${fmtMs(quantile(applied, 1))} (${slow} over 100 ms)`,
    },
    {
      metric: 'c. same rotations, append → writer’s admin call returned, p50/p99/max',
      value: `${fmtMs(quantile(returned, 0.5))} / ${fmtMs(quantile(returned, 0.99))} / ${fmtMs(quantile(returned, 1))}`,
    },
  ];
}

export async function run(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const keystore = makeKeystore('churn');
  const memory = new MemoryEventStore();
  // For replays from the first event: snapshots neither loaded nor saved.
  const noSnapshots = observedStore(memory, { loadSnapshots: false, saveSnapshots: false });
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    // --- setup ---
    const setupSeconds = await enableScopes(keystore, memory);
    const events = Number(await memory.headPosition());
    rows.push({
      metric: `setup: enable ${SCOPES} scopes via admin API (memory store${FULL ? ', default snapshots' : ''})`,
      value: `${setupSeconds.toFixed(1)} s (${((setupSeconds / SCOPES) * 1e6).toFixed(0)} µs/scope, ${events} events)`,
    });

    // --- (d) replay ---
    const open = async (
      store: EventStore,
      snapshotEvery: number | undefined,
      cache?: { maxActiveScopes: number; maxKeys: number },
    ) => {
      const { value, seconds } = await timed(() =>
        Ledger.open({ store, provider: keystore.provider(), snapshotEvery, cache }),
      );
      if (value.position !== BigInt(events)) throw new Error('replay did not reach the head');
      return { ledger: value, seconds };
    };
    const rate = (seconds: number) => fmtOps(events / seconds).replace('ops', 'events');
    if (FULL) {
      // Replays from the start and saves a snapshot every 1000 events, as a ledger does by default.
      const saving = observedStore(memory, { loadSnapshots: false });
      const withSnapshots = await open(saving, undefined);
      await withSnapshots.ledger.close();
      rows.push({
        metric: `d. replay ${events} events, Ledger.open (default snapshotEvery 1000)`,
        value: `${withSnapshots.seconds.toFixed(2)} s, ${rate(withSnapshots.seconds)}`,
      });
    }
    const plain = await open(noSnapshots, NO_SNAPSHOTS);
    rows.push({
      metric: `d. replay ${events} events, Ledger.open (periodic snapshots off)`,
      value: `${plain.seconds.toFixed(2)} s, ${rate(plain.seconds)}`,
    });
    const restored = await open(memory, undefined);
    await restored.ledger.close();
    rows.push({
      metric: `d. Ledger.open from a snapshot at the head (${SCOPES} scopes)`,
      value: `${restored.seconds.toFixed(2)} s`,
    });
    rows.push(...(await snapshotCost(noSnapshots, keystore.dir, keystore.provider())));

    // --- (c) lookups, on the replayed ledger (default L1) ---
    const ledger = plain.ledger;
    const targets: ResolutionTarget[] = [];
    for (let c = 0; c < CUSTODIANS; c++) {
      const cust = custodian(c);
      for (let n = 0; n < NAMESPACES; n++) targets.push(ledger.resolver.target(cust, [`ns-${n}`]));
    }
    const random = seededRandom(SEED);
    const zipf = zipfSequence(SCOPES, LOOKUPS + WARMUP, ZIPF_S, random);
    const uniform = uniformSequence(SCOPES, LOOKUPS + WARMUP, random);
    const distributions = [
      ['Zipf s=1.0', zipf],
      ['uniform', uniform],
    ] as const;
    const l1 = ledger.resolver.metrics();
    for (const [name, sequence] of distributions) {
      const warm = sequence.subarray(0, WARMUP);
      const measured = sequence.subarray(WARMUP);
      const r = await lookups(ledger, targets, measured, warm);
      const lru = lruHitRate(measured, warm, l1.l1Resolutions.max);
      rows.push(
        {
          metric: `c. ${name}: 1M resolveActive, L1 ${l1.l1Keys.max} keys / ${l1.l1Resolutions.max} resolutions`,
          value: fmtOps(r.opsPerSecond),
        },
        {
          metric: `c. ${name}: L1 hit rate (plain LRU(${l1.l1Resolutions.max}) on the same sequence)`,
          value: `${pct(r.hitRate)} (${pct(lru)})`,
        },
        { metric: `c. ${name}: L2 hits, L1 evictions`, value: `${r.l2Hits}, ${r.evictions}` },
      );
    }
    const final = ledger.resolver.metrics();
    rows.push({
      metric: 'c. L1 size after the run (keys, resolutions)',
      value: `${final.l1Keys.size}/${final.l1Keys.max}, ${final.l1Resolutions.size}/${final.l1Resolutions.max}`,
    });
    await ledger.close();

    // --- (c) again with a 100× larger L1, for context ---
    const big = await open(noSnapshots, NO_SNAPSHOTS, { maxActiveScopes: BIG_L1, maxKeys: BIG_L1 });
    const bigTargets = targets.map((t) => big.ledger.resolver.target(t.custodian, t.namespaces));
    {
      const warm = zipf.subarray(0, WARMUP);
      const measured = zipf.subarray(WARMUP);
      const r = await lookups(big.ledger, bigTargets, measured, warm);
      rows.push({
        metric: `c. Zipf s=1.0 with L1 ${BIG_L1} keys / ${BIG_L1} resolutions: ops/s, hit rate (plain LRU)`,
        value: `${fmtOps(r.opsPerSecond)}, ${pct(r.hitRate)} (${pct(lruHitRate(measured, warm, BIG_L1))})`,
      });
    }
    await big.ledger.close();

    rows.push(...(await latencyAtScale(keystore, memory)));

    notes.push(
      FULL
        ? 'BENCH_FULL=1: setup and one replay with the default snapshotEvery (1000)'
        : `setup and replays with snapshotEvery ${NO_SNAPSHOTS} (BENCH_FULL=1 adds the defaults; ~100 s each)`,
      `${CUSTODIANS} custodians × ${NAMESPACES} namespaces; one candidate per target, prepared once; sequences seeded (${SEED}), Zipf ranks shuffled over scopes; ${WARMUP} warm-up lookups of the same distribution before each measured 1M`,
      'lookups are awaited one after another (single caller); the keys are unwrapped from the view (L2) on a miss whose key is not held in L1',
    );
  } finally {
    await memory.close();
    keystore.remove();
  }
  return {
    bench: 'c/d. Resolution under churn (100k scopes) and replay',
    machine: machineInfo(),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    rows,
    notes,
  };
}

await main(import.meta.url, 'churn', run);
