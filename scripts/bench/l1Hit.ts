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
 * A second ledger shows the configuration HBase users run: dynamic lookup on (the default) and a
 * keystore provider with a key configured only at `*`. The first three candidates then get a FAILED
 * answer from the provider, and the resolution at `*` is cached as provisional: with a TTL, which
 * switches lru-cache's per-entry TTL checks on.
 *
 * Warm-up, then ROUNDS rounds in which every loop runs for ROUND_MS; per loop the median ops/s, and
 * per comparison the median of the per-round ratios (subject ÷ baseline of the same round).
 */
import { LRUCache } from 'lru-cache';
import type { ResolutionTarget } from '../../src/crypto/keySource.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { namespaceCandidates } from '../../src/ledger/namespaceCandidates.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import {
  type BenchResult,
  custodian,
  fmtOps,
  KEYSTORE_PASSWORD_ENV,
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

async function prepare(ledger: Ledger, cust: string): Promise<ResolutionTarget[]> {
  await ledger.initialise();
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
  return targets;
}

export async function run(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const keystore = makeKeystore('l1', ['dek-star']);
  const cust = custodian(1);
  const store = new MemoryEventStore();
  const ledger = await Ledger.open({
    store,
    provider: keystore.provider(),
    resolver: { dynamicLookup: false },
  });
  const dynamicStore = new MemoryEventStore();
  const dynamic = await Ledger.open({
    store: dynamicStore,
    provider: new KeystoreKeyProvider(
      resolveKeystoreConfig(
        {
          path: keystore.path,
          password: { env: KEYSTORE_PASSWORD_ENV },
          systemKeyAlias: 'stk',
          scopes: { [`${cust}:*`]: { alias: 'dek-star' } },
        },
        keystore.dir,
      ),
    ),
  });
  try {
    const targets = await prepare(ledger, cust);
    const hot = targets[0] as ResolutionTarget;
    const resolver = ledger.resolver;
    const provisionalTargets = await prepare(dynamic, cust);
    const provisionalHot = provisionalTargets[0] as ResolutionTarget;
    const provisional = dynamic.resolver;

    // The baseline: the same size, the same keys, a value of the same shape.
    const raw = new LRUCache<string, { candidate: number }>({ max: TARGETS });
    const keys = targets.map((t) => t.cacheKey);
    for (const key of keys) raw.set(key, { candidate: 3 });
    const hotKey = hot.cacheKey;
    // The same with every entry set with a TTL, as the provisional resolutions are.
    const rawTtl = new LRUCache<string, { candidate: number }>({ max: TARGETS });
    for (const key of keys) rawTtl.set(key, { candidate: 3 }, { ttl: 30_000 });

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
      'lru-cache get, hot key, TTL entries': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += rawTtl.get(hotKey)?.candidate ?? 0;
        return s;
      },
      'lru-cache get, 100 keys round-robin, TTL entries': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += rawTtl.get(keys[i % TARGETS] as string)?.candidate ?? 0;
        return s;
      },
      'peekActive, hot target, provisional (TTL)': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += provisional.peekActive(provisionalHot)?.candidate ?? 0;
        return s;
      },
      'peekActive, 100 targets round-robin, provisional (TTL)': (n) => {
        let s = 0;
        for (let i = 0; i < n; i++)
          s += provisional.peekActive(provisionalTargets[i % TARGETS] as ResolutionTarget)?.candidate ?? 0;
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
    const provisionalBefore = provisional.metrics().l1;
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
    const provisionalAfter = provisional.metrics().l1;
    if (l1After.misses !== l1Before.misses || provisionalAfter.misses !== provisionalBefore.misses) {
      throw new Error('a lookup missed L1 during the bench');
    }

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
        value: `${r.toFixed(3)}×`,
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
      'peekActive provisional ÷ lru-cache get (hot)',
      'peekActive, hot target, provisional (TTL)',
      'lru-cache get, hot key',
      true,
    );
    compare(
      'peekActive provisional ÷ lru-cache get (round-robin)',
      'peekActive, 100 targets round-robin, provisional (TTL)',
      'lru-cache get, 100 keys round-robin',
      true,
    );
    compare(
      'peekActive provisional ÷ lru-cache get with TTL (hot)',
      'peekActive, hot target, provisional (TTL)',
      'lru-cache get, hot key, TTL entries',
      false,
    );
    compare(
      'peekActive provisional ÷ lru-cache get with TTL (round-robin)',
      'peekActive, 100 targets round-robin, provisional (TTL)',
      'lru-cache get, 100 keys round-robin, TTL entries',
      false,
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
        `L1 hits during the rounds: ${l1After.hits - l1Before.hits + provisionalAfter.hits - provisionalBefore.hits}, misses: 0`,
        'provisional: dynamic lookup on, keystore provider with a key only at `*`; the 3 earlier candidates are FAILED, so the resolution is cached with the FAILED-entry TTL (30 s)',
      ],
    };
  } finally {
    await ledger.close();
    await store.close();
    await dynamic.close();
    await dynamicStore.close();
    keystore.remove();
  }
}

await main(import.meta.url, 'l1Hit', run);
