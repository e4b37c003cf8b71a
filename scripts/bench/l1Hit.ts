/**
 * (a) L1-hit resolution through the four-candidate fallback, against plain `lru-cache` `get`.
 *
 * One custodian has a key only at `*`; each target is HBase's four candidates
 * (explicit attribute → `<table>/<family>` → `<table>` → `*`) prepared once, so every answer is the
 * 4th candidate. Dynamic lookup is off, otherwise the first miss would ask the (generated) provider
 * for the first three candidates and the match would move to candidate 0. The L1 resolution cache
 * (default size: 100) holds 100 such targets; the baseline is an `LRUCache` of the same size holding
 * the same 100 string keys. Two access patterns: one hot target, and round-robin over all 100.
 *
 * Warm-up, then ROUNDS rounds in which every loop runs for ROUND_MS; per loop the median ops/s, and
 * per comparison the median of the per-round ratios (subject ÷ baseline of the same round).
 */
import { LRUCache } from 'lru-cache';
import type { ResolutionTarget } from '../../src/cache/keyCache.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { namespaceCandidates } from '../../src/ledger/namespaceCandidates.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import {
  type BenchResult,
  custodian,
  fmtOps,
  machineInfo,
  main,
  makeKeystore,
  median,
  type Row,
} from './common.js';

const TARGETS = 100;
const ROUNDS = 7;
const ROUND_MS = 150;
const CHUNK = 20_000;
const TARGET_RATIO = 0.5;

type Loop = (n: number) => number | Promise<number>;

/** Runs `loop` in chunks until `ms` have passed; ops/s. */
async function opsPerSecond(loop: Loop, ms: number): Promise<{ ops: number; sink: number }> {
  let ops = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < until) {
    sink += await loop(CHUNK);
    ops += CHUNK;
    now = process.hrtime.bigint();
  }
  return { ops: (ops * 1e9) / Number(now - start), sink };
}

export async function run(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const keystore = makeKeystore('l1');
  const store = new MemoryEventStore();
  const ledger = await Ledger.open({
    store,
    provider: keystore.provider(),
    resolver: { dynamicLookup: false },
  });
  try {
    await ledger.initialise();
    const cust = custodian(1);
    await ledger.admin.enableKeyManagement(cust, '*');
    const targets: ResolutionTarget[] = [];
    for (let i = 0; i < TARGETS; i++) {
      const candidates = namespaceCandidates({ explicit: `attr-${i}`, table: `table-${i}`, family: 'cf' });
      const target = ledger.resolver.target(cust, candidates);
      const resolved = await ledger.resolver.resolveActive(target);
      if (resolved?.candidate !== 3 || candidates.length !== 4) {
        throw new Error(`expected the 4th candidate to match, got ${resolved?.candidate}`);
      }
      targets.push(target);
    }
    const hot = targets[0] as ResolutionTarget;
    const resolver = ledger.resolver;

    // The baseline: the same size, the same keys, a value of the same shape.
    const raw = new LRUCache<string, { candidate: number }>({ max: TARGETS });
    const keys = targets.map((t) => t.cacheKey);
    for (const key of keys) raw.set(key, { candidate: 3 });
    const hotKey = hot.cacheKey;

    // One function per loop, so that each call site stays monomorphic.
    const loops: Record<string, Loop> = {
      'lru-cache get, hot key': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += raw.get(hotKey)?.candidate ?? 0;
        return s;
      },
      'peekActive, hot target': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += resolver.peekActive(hot)?.candidate ?? 0;
        return s;
      },
      'lru-cache get, 100 keys round-robin': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += raw.get(keys[i % TARGETS] as string)?.candidate ?? 0;
        return s;
      },
      'peekActive, 100 targets round-robin': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++)
          s += resolver.peekActive(targets[i % TARGETS] as ResolutionTarget)?.candidate ?? 0;
        return s;
      },
      'resolveActive (awaited), hot target': async (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += (await resolver.resolveActive(hot))?.candidate ?? 0;
        return s;
      },
      'lru-cache get + await Promise.resolve, hot key': async (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += (await Promise.resolve(raw.get(hotKey)))?.candidate ?? 0;
        return s;
      },
    };

    const names = Object.keys(loops);
    const samples = new Map<string, number[]>(names.map((n) => [n, []]));
    let sink = 0;
    for (const name of names) {
      const loop = loops[name] as Loop;
      sink += (await opsPerSecond(loop, 100)).sink + (await opsPerSecond(loop, 100)).sink;
    }
    const l1Before = resolver.metrics().l1;
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so that neither side always runs right after the other.
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const measured = await opsPerSecond(loops[name] as Loop, ROUND_MS);
        sink += measured.sink;
        samples.get(name)?.push(measured.ops);
      }
    }
    const l1After = resolver.metrics().l1;
    if (sink === 0) throw new Error('nothing resolved');
    if (l1After.misses !== l1Before.misses) throw new Error('a lookup missed L1 during the bench');

    const med = (name: string) => median(samples.get(name) ?? []);
    const ratio = (subject: string, baseline: string) => {
      const s = samples.get(subject) ?? [];
      const b = samples.get(baseline) ?? [];
      return median(s.map((v, i) => v / (b[i] ?? Number.NaN)));
    };
    const rows: Row[] = names.map((name) => ({ metric: name, value: fmtOps(med(name)) }));
    const compare = (label: string, subject: string, baseline: string, target: boolean) => {
      const r = ratio(subject, baseline);
      rows.push({
        metric: label,
        value: `${r.toFixed(2)}×`,
        ...(target ? { target: `≥ ${TARGET_RATIO}× raw`, met: r >= TARGET_RATIO } : {}),
      });
    };
    compare('peekActive ÷ lru-cache get (hot)', 'peekActive, hot target', 'lru-cache get, hot key', true);
    compare(
      'peekActive ÷ lru-cache get (round-robin)',
      'peekActive, 100 targets round-robin',
      'lru-cache get, 100 keys round-robin',
      true,
    );
    compare(
      'resolveActive ÷ lru-cache get (hot)',
      'resolveActive (awaited), hot target',
      'lru-cache get, hot key',
      true,
    );
    compare(
      'resolveActive ÷ (lru-cache get + await)',
      'resolveActive (awaited), hot target',
      'lru-cache get + await Promise.resolve, hot key',
      false,
    );
    return {
      bench: 'a. L1-hit resolution, four-candidate fallback (match at `*`)',
      machine: machineInfo(),
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      rows,
      notes: [
        `${TARGETS} prepared targets resident in L1 (resolution cache max ${resolver.metrics().l1Resolutions.max}); baseline LRUCache max ${TARGETS} with the same keys`,
        `${ROUNDS} rounds × ${ROUND_MS} ms per loop after warm-up; medians; ratios are medians of per-round ratios`,
        `L1 hits during the rounds: ${l1After.hits - l1Before.hits}, misses: 0`,
      ],
    };
  } finally {
    await ledger.close();
    await store.close();
    keystore.remove();
  }
}

await main(import.meta.url, 'l1Hit', run);
