/**
 * Issue 6: replay speed of the keymeta projection over a large sqlite ledger, as-of query latency
 * with the historic snapshot series, and verify speed.
 *
 * The ledger (BENCH_AUDIT_EVENTS events, default 1M; BENCH_AUDIT_EVENTS=100000 for a quick run) is
 * written straight into sqlite by auditLedger.ts. Figures, each against a baseline from the same
 * process and the same file:
 *  (a) replay: readAll → parseLedgerEvent (every event checked in full: hand-written checks for the
 *      common types, zod for the rest) → KeymetaReplay (the replay fold; the reference fold
 *      evolveKeymeta is timed alone on events in memory), in events/s, against a raw readAll
 *      of the same events (the floor any replay pays); also Ledger.open's catch-up (the projector:
 *      keymeta, system keys, cache invalidation) with snapshots and the as-of series off.
 *  (b) as-of: Ledger.open once more with the series on (the default), which leaves a historic
 *      snapshot series behind; then `ledger.asOf(t)` at random times and positions, against the
 *      replay from the first event to the same target; and `ledger.scopeAsOf` for random scopes.
 *  (c) verify: verifyStore (hash chains and checkpoints; no provider, so MACs are skipped) in events/s
 *      against the same raw readAll.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { emptyKeymetaView, evolveKeymeta } from '../../projections/keymeta.js';
import { KeymetaReplay } from '../../projections/keymetaReplay.js';
import { loadAsOfIndex } from '../../src/audit/asOfSnapshots.js';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { parseLedgerEvent } from '../../src/domain/events.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore, RecordedEvent } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { type GeneratedLedger, generateLedger, PREFIX } from './auditLedger.js';
import {
  type BenchKeystore,
  type BenchResult,
  fmtMs,
  fmtOps,
  KEYSTORE_PASSWORD,
  KEYSTORE_PASSWORD_ENV,
  keystoreProvider,
  machineInfo,
  main,
  makeKeystore,
  median,
  observedStore,
  quantile,
  type Row,
  seededRandom,
  timed,
} from './common.js';

const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 1_000_000);
/**
 * BENCH_AUDIT_LEDGER=<file.db>: keep the generated ledger there (with `<file>.json` describing it)
 * and reuse it, with the as-of series a first run left in it, on later runs: at 1M events writing
 * the ledger and the series takes minutes.
 */
const KEPT_LEDGER = process.env.BENCH_AUDIT_LEDGER;
/** BENCH_AUDIT_PARTS=replay,asof,verify (default all): the sections to run. */
const PARTS = new Set((process.env.BENCH_AUDIT_PARTS ?? 'replay,asof,verify').split(','));
/** About 50 events per scope over the year: enable, rotations, many refreshes. */
const SCOPES = Math.max(100, Math.floor(EVENTS / 50));
const TARGET_EVENTS_PER_S = 300_000;
/** Issue 17: the replay at this fraction of the raw read of the same events. */
const TARGET_RAW_RATIO = 0.8;
/** Replays of the whole ledger, alternating with raw reads: fewer on a big ledger, for the runtime. */
const ROUNDS = EVENTS > 200_000 ? 2 : 3;
/** As-of queries at random times and as many at random positions; the first of each is also replayed. */
const AS_OF_QUERIES = 4;
const SCOPE_QUERIES = 50;
const NO_SNAPSHOTS = 1e9;
const BREAKDOWN_EVENTS = 100_000;

function perSecond(events: number, seconds: number): number {
  return events / seconds;
}

async function rawRead(store: SqliteEventStore): Promise<number> {
  let n = 0;
  for await (const _ of store.readAll({ streamPrefix: PREFIX })) n++;
  return n;
}

/** readAll and parseLedgerEvent without the fold: what the fold adds is the difference to replay. */
async function parseRead(store: SqliteEventStore): Promise<number> {
  let n = 0;
  for await (const recorded of store.readAll({ streamPrefix: PREFIX })) {
    parseLedgerEvent(recorded);
    n++;
  }
  return n;
}

/** The keymeta projection from the first event up to `target` (everything when undefined). */
async function replay(store: SqliteEventStore, target?: bigint | Date) {
  const fold = new KeymetaReplay(emptyKeymetaView());
  let n = 0;
  for await (const recorded of store.readAll({ streamPrefix: PREFIX })) {
    if (typeof target === 'bigint' && recorded.position > target) break;
    const event = parseLedgerEvent(recorded);
    if (target instanceof Date && Date.parse(event.meta.occurredAt) > target.getTime()) break;
    fold.apply(event);
    n++;
  }
  return { view: fold.view(), n };
}

/**
 * Where a replay's time goes, on the first BREAKDOWN_EVENTS records held in memory: the schema
 * parse alone, and the fold alone over events already parsed.
 */
async function breakdown(store: SqliteEventStore): Promise<Row[]> {
  const records: RecordedEvent[] = [];
  for await (const recorded of store.readAll({ streamPrefix: PREFIX, maxCount: BREAKDOWN_EVENTS }))
    records.push(recorded);
  const parseRates: number[] = [];
  const foldRates: number[] = [];
  const replayRates: number[] = [];
  for (let round = 0; round < 3; round++) {
    const parsed = await timed(async () => records.map(parseLedgerEvent));
    parseRates.push(perSecond(records.length, parsed.seconds));
    const folded = await timed(async () => {
      const view = emptyKeymetaView();
      for (const event of parsed.value) evolveKeymeta(view, event);
      return view;
    });
    foldRates.push(perSecond(records.length, folded.seconds));
    const replayed = await timed(async () => {
      const fold = new KeymetaReplay(emptyKeymetaView());
      for (const event of parsed.value) fold.apply(event);
      return fold.view();
    });
    replayRates.push(perSecond(records.length, replayed.seconds));
  }
  return [
    {
      metric: `a. of which: parseLedgerEvent alone, first ${records.length} events in memory`,
      value: fmtOps(median(parseRates)).replace('ops', 'events'),
    },
    {
      metric: 'a. of which: evolveKeymeta alone over the parsed events (the reference fold)',
      value: fmtOps(median(foldRates)).replace('ops', 'events'),
    },
    {
      metric: 'a. of which: KeymetaReplay alone over the parsed events (the replay fold)',
      value: fmtOps(median(replayRates)).replace('ops', 'events'),
    },
  ];
}

/**
 * The keystore kept beside a kept ledger: the as-of series a first run wrote is sealed under its
 * system key, and a later run with a new keystore could check none of it (each query would then
 * replay from the first event, and measure that).
 */
function keptKeystore(path: string): BenchKeystore {
  if (!existsSync(path)) {
    const made = makeKeystore('audit');
    copyFileSync(made.path, path);
    made.remove();
  }
  process.env[KEYSTORE_PASSWORD_ENV] = KEYSTORE_PASSWORD;
  const dir = dirname(path);
  return { dir, path, provider: () => keystoreProvider(path, dir), remove: () => undefined };
}

/** The ledger to measure: generated, or the kept one (see KEPT_LEDGER). */
async function ledgerFile(path: string, keystore: BenchKeystore): Promise<GeneratedLedger> {
  const described = `${path}.json`;
  if (KEPT_LEDGER !== undefined && existsSync(path) && existsSync(described)) {
    return JSON.parse(readFileSync(described, 'utf8')) as GeneratedLedger;
  }
  // The ledger records the keystore's own system key, so that its as-of series can be sealed.
  const handle = await keystore.provider().unwrapSystemKey('{"KeyAlias":"stk"}');
  const info = await generateLedger(path, EVENTS, SCOPES, undefined, handle.identity);
  handle.dispose();
  if (KEPT_LEDGER !== undefined) writeFileSync(described, JSON.stringify(info));
  return info;
}

async function bench(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-bench-audit-'));
  const keystore = KEPT_LEDGER === undefined ? makeKeystore('audit') : keptKeystore(`${KEPT_LEDGER}.p12`);
  const path = KEPT_LEDGER ?? join(dir, 'ledger.db');
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    const generated = await timed(() => ledgerFile(path, keystore));
    const ledgerInfo = generated.value;
    notes.push(
      `ledger: ${ledgerInfo.events} events over ${ledgerInfo.scopes.length} scopes and one year, ${KEPT_LEDGER === undefined ? 'written straight into sqlite' : `kept in ${KEPT_LEDGER}`} in ${generated.seconds.toFixed(1)} s`,
    );
    const store = SqliteEventStore.open(path);
    try {
      let rawRate = Number.NaN;
      let openedSeconds = Number.NaN;
      const bare = observedStore(store, { loadSnapshots: false, saveSnapshots: false });
      if (PARTS.has('replay')) {
        // (a) replay, alternating with the raw read, 3 rounds each; medians.
        const raw: number[] = [];
        const parsedOnly: number[] = [];
        const replayed: number[] = [];
        let viewSize = 0;
        for (let round = 0; round < ROUNDS; round++) {
          const r = await timed(() => rawRead(store));
          raw.push(perSecond(r.value, r.seconds));
          const q = await timed(() => parseRead(store));
          parsedOnly.push(perSecond(q.value, q.seconds));
          const p = await timed(() => replay(store));
          replayed.push(perSecond(p.value.n, p.seconds));
          viewSize = p.value.view.scopes.size + p.value.view.keyIndex.size;
        }
        rawRate = median(raw);
        const parsedRate = median(parsedOnly);
        const replayRate = median(replayed);
        rows.push(
          {
            metric: 'a. raw readAll of the ledger (baseline)',
            value: fmtOps(rawRate).replace('ops', 'events'),
          },
          {
            metric: 'a. readAll → parseLedgerEvent, no fold',
            value: `${fmtOps(parsedRate).replace('ops', 'events')} (${(parsedRate / rawRate).toFixed(2)}× raw readAll)`,
          },
          {
            metric: 'a. keymeta replay: readAll → parseLedgerEvent → KeymetaReplay',
            value: `${fmtOps(replayRate).replace('ops', 'events')} (${(replayRate / rawRate).toFixed(2)}× raw readAll)`,
            target: `≥ ${TARGET_EVENTS_PER_S / 1000}k events/s and ≥ ${TARGET_RAW_RATIO}× raw`,
            met: replayRate >= TARGET_EVENTS_PER_S && replayRate / rawRate >= TARGET_RAW_RATIO,
          },
        );
        notes.push(`view after replay: ${viewSize} entries (scopes + keys)`);
        rows.push(...(await breakdown(store)));

        // The projector's catch-up, as Ledger.open does it, with nothing saved along the way.
        const opened = await timed(async () => {
          const ledger = await Ledger.open({
            store: bare,
            provider: keystore.provider(),
            snapshotEvery: NO_SNAPSHOTS,
            asOfEvery: 0,
          });
          const position = ledger.position;
          await ledger.close();
          return position;
        });
        rows.push({
          metric: 'a. Ledger.open catch-up (projector, caches), no snapshots',
          value: `${fmtOps(perSecond(ledgerInfo.events, opened.seconds)).replace('ops', 'events')} (${opened.seconds.toFixed(1)} s)`,
        });
        openedSeconds = opened.seconds;
      }

      if (PARTS.has('asof')) {
        // (b) the series: a Ledger.open from nothing with the defaults leaves it behind.
        // Only the as-of series is saved: the projector's own snapshot would be a cost of its own.
        const seriesOnly: EventStore = {
          ...bare,
          saveSnapshot: (name, snapshot) =>
            name === `${PREFIX}keymeta` ? Promise.resolve() : store.saveSnapshot(name, snapshot),
          // Historic snapshots are row snapshots on sqlite (src/audit/asOfSnapshots.ts).
          saveSnapshotRows: (name, header, rows, base) =>
            name === `${PREFIX}keymeta`
              ? Promise.resolve(false)
              : store.saveSnapshotRows(name, header, rows, base),
        };
        // A kept ledger keeps the series a first run wrote.
        const kept = (await loadAsOfIndex(store, PREFIX)).some((m) => m.snapshot);
        const series = await timed(async () => {
          if (kept) return;
          const ledger = await Ledger.open({
            store: seriesOnly,
            provider: keystore.provider(),
            snapshotEvery: NO_SNAPSHOTS,
          });
          await ledger.close();
        });
        const marks = await loadAsOfIndex(store, PREFIX);
        const snapshots = marks.filter((m) => m.snapshot);
        rows.push({
          metric: 'b. same catch-up writing the as-of series (default asOfEvery 10000)',
          value: `${kept ? 'kept from an earlier run' : `${series.seconds.toFixed(1)} s${Number.isNaN(openedSeconds) ? '' : ` (${(series.seconds / openedSeconds).toFixed(2)}× without)`}`}, ${snapshots.length} historic snapshots, ${marks.length} marks`,
        });

        const ledger = await Ledger.open({ store, provider: keystore.provider() });
        try {
          const random = seededRandom(66);
          const head = await store.headPosition();
          const asOfMs: number[] = [];
          const asOfCpuMs: number[] = [];
          const readWholeMs: number[] = [];
          const pairs: string[] = [];
          for (let i = 0; i < AS_OF_QUERIES * 2; i++) {
            // The two compared with a replay are three quarters into the ledger; the others random.
            const fraction = i < 2 ? 0.75 : random();
            const target =
              i % 2 === 0
                ? new Date(
                    ledgerInfo.firstAt + Math.floor(fraction * (ledgerInfo.lastAt - ledgerInfo.firstAt)),
                  )
                : 1n + BigInt(Math.floor(fraction * Number(head)));
            const cpuBefore = process.cpuUsage();
            const q = await timed(() => ledger.asOf(target));
            const cpuUsed = process.cpuUsage(cpuBefore);
            asOfMs.push(q.seconds * 1000);
            asOfCpuMs.push((cpuUsed.user + cpuUsed.system) / 1000);
            // The answer's scopes are decoded when read (src/audit/lazyScopes.ts): what reading
            // every one of them costs a caller on top of the query.
            const whole = await timed(async () => {
              let keys = 0;
              for (const state of q.value.scopes.values()) keys += state.keys.size;
              return keys;
            });
            readWholeMs.push(whole.seconds * 1000);
            // Replays from the first event are slow on a big ledger: two targets, a time and a position.
            if (i >= 2) continue;
            const r = await timed(() => replay(store, target));
            // The answer must be the replay's: a benchmark of a wrong answer is worth nothing.
            if (q.value.scopes.size !== r.value.view.scopes.size)
              throw new Error('as-of and replay disagree');
            pairs.push(
              `${fmtMs(q.seconds * 1000)} vs ${fmtMs(r.seconds * 1000)} replaying ${r.value.n} events (${(r.seconds / q.seconds).toFixed(1)}×)`,
            );
          }
          rows.push(
            {
              metric: `b. whole-ledger as-of (${AS_OF_QUERIES} times, ${AS_OF_QUERIES} positions), median / max`,
              value: `${fmtMs(median(asOfMs))} / ${fmtMs(quantile(asOfMs, 1))}`,
              target: '< 300 ms / < 1 s',
              met: median(asOfMs) < 300 && quantile(asOfMs, 1) < 1000,
            },
            {
              metric: 'b. the same, CPU time (process, every thread), median / max',
              value: `${fmtMs(median(asOfCpuMs))} / ${fmtMs(quantile(asOfCpuMs, 1))}`,
            },
            {
              metric: 'b. then reading every scope of the answer (decoded on first read), median / max',
              value: `${fmtMs(median(readWholeMs))} / ${fmtMs(quantile(readWholeMs, 1))}`,
            },
            {
              metric:
                'b. as-of vs a replay from the first event to the same target (a time; a position, 3/4 in)',
              value: pairs.join('; '),
            },
          );
          const scopeMs: number[] = [];
          for (let i = 0; i < SCOPE_QUERIES; i++) {
            const scope = ledgerInfo.scopes[Math.floor(random() * ledgerInfo.scopes.length)];
            if (scope === undefined) continue;
            const at = new Date(
              ledgerInfo.firstAt + Math.floor(random() * (ledgerInfo.lastAt - ledgerInfo.firstAt)),
            );
            const q = await timed(() => ledger.scopeAsOf(scope.custodian, scope.namespace, at));
            scopeMs.push(q.seconds * 1000);
          }
          rows.push({
            metric: `b. one scope as-of a random time (${SCOPE_QUERIES} queries), median / p90`,
            value: `${fmtMs(median(scopeMs))} / ${fmtMs(quantile(scopeMs, 0.9))}`,
          });
        } finally {
          await ledger.close();
        }
      }

      // (c) verify.
      if (PARTS.has('verify')) {
        const verified = await timed(() => verifyStore(store, { prefix: PREFIX }));
        const verifyRate = perSecond(verified.value.eventsChecked, verified.seconds);
        rows.push({
          metric: 'c. verify (hash chains, checkpoints; MACs skipped without a provider)',
          value: `${fmtOps(verifyRate).replace('ops', 'events')}${Number.isNaN(rawRate) ? '' : ` (${(verifyRate / rawRate).toFixed(2)}× raw readAll)`}, ok: ${verified.value.ok}`,
        });
      }
    } finally {
      await store.close();
    }
  } finally {
    keystore.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    bench: 'auditQueries',
    machine: machineInfo(),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    rows,
    notes,
  };
}

await main(import.meta.url, 'auditQueries', bench);
