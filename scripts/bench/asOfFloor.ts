/**
 * The floor of a whole-ledger as-of at 1M events (issue 17, fourth session): what each part of
 * starting from the late historic snapshot costs, measured apart, so that the design can be picked
 * by figures. Run on a kept audit ledger (auditQueries.ts with BENCH_AUDIT_LEDGER):
 *
 *   node --import tsx scripts/bench/asOfFloor.ts /tmp/kl-audit-1m.db [rounds]
 *
 * On the last historic snapshot of the series (the whole view without materials), CPU time of
 * the process (`process.cpuUsage`, every thread), median of rounds:
 *   a. reading the stored text (sqlite, the snapshot's state column);
 *   b. JSON.parse of it alone;
 *   c. building the view from the parsed body (keymetaFromSnapshot);
 *   d. HMAC-SHA256 over the stored bytes;
 *   e. the row form (projections/keymetaRows.ts): encoding every scope's row, a keyed hash of each
 *      (rowHash.ts), JSON.parse of each row alone, and KeymetaRowDecoder over all of them;
 *   f. rows kept in a sqlite table: reading them all, and one by one by key;
 *   g. the replay after the snapshot (readAll → parseLedgerEvent → KeymetaReplay), events per CPU-s.
 * Not part of `npm run bench` (it needs the kept ledger).
 */

import { execSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { emptyKeymetaView } from '../../projections/keymeta.js';
import { KeymetaReplay } from '../../projections/keymetaReplay.js';
import { KeymetaRowDecoder, keymetaRowOf } from '../../projections/keymetaRows.js';
import { keymetaFromSnapshot } from '../../projections/keymetaSnapshot.js';
import { isAsOfRowsBody, loadAsOfRows } from '../../src/audit/asOfRows.js';
import { loadAsOfIndex } from '../../src/audit/asOfSnapshots.js';
import { addRowHash } from '../../src/audit/rowHash.js';
import { checkSnapshot, openingSnapshotKeys } from '../../src/audit/snapshotSeal.js';
import { parseLedgerEvent } from '../../src/domain/events.js';
import { asOfSnapshotName, streamNames } from '../../src/journal/streamNames.js';
import type { JsonValue } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { KEYSTORE_PASSWORD, KEYSTORE_PASSWORD_ENV, keystoreProvider, median } from './common.js';

const PREFIX = 'kl-';
const path = process.argv[2] ?? '/tmp/kl-audit-1m.db';
const ROUNDS = Number(process.argv[3] ?? 3);

function cpuMs<T>(work: () => T): { value: T; ms: number } {
  const before = process.cpuUsage();
  const value = work();
  const used = process.cpuUsage(before);
  return { value, ms: (used.user + used.system) / 1000 };
}

const figures = new Map<string, number[]>();
function record(name: string, ms: number): void {
  const list = figures.get(name) ?? [];
  list.push(ms);
  figures.set(name, list);
}

const uptime = () => execSync('uptime').toString().trim();
console.log(`asOfFloor ${path}, ${ROUNDS} rounds; ${uptime()}`);

const store = await SqliteEventStore.open(path);
const marks = (await loadAsOfIndex(store, PREFIX)).filter((m) => m.snapshot);
const last = marks[marks.length - 1];
if (last === undefined) throw new Error('no historic snapshot in the series');
const name = asOfSnapshotName(PREFIX, last.position);
const db = new Database(path, { readonly: true });
const select = db.prepare('SELECT state FROM snapshots WHERE name = ?').pluck();
if (isAsOfRowsBody((JSON.parse(select.get(name) as string) as { body: unknown }).body)) {
  await rowForm();
  process.exit(0);
}

const rowsDb = new Database(':memory:');
rowsDb.exec(
  'CREATE TABLE r (name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, key))',
);
let sizes = '';
for (let round = 0; round < ROUNDS; round++) {
  const a = cpuMs(() => select.get(name) as string);
  record('a. sqlite read of the stored text', a.ms);
  const text = a.value;
  const b = cpuMs(() => JSON.parse(text) as { body: JsonValue });
  record('b. JSON.parse alone', b.ms);
  const c = cpuMs(() => keymetaFromSnapshot(b.value.body, last.position));
  record('c. keymetaFromSnapshot (view from parsed)', c.ms);
  const view = c.value;
  if (view === null) throw new Error('snapshot body not usable');
  const secret = crypto.randomBytes(32);
  const d = cpuMs(() => crypto.createHmac('sha256', secret).update(text, 'utf8').digest());
  record('d. HMAC-SHA256 over the stored text', d.ms);
  const noMaterials = new Map();
  const e1 = cpuMs(() => [...view.scopes].map(([k, s]) => [k, keymetaRowOf(s, noMaterials)] as const));
  record('e. encode every row (keymetaRowOf)', e1.ms);
  const rows = e1.value;
  const lanes = new Uint32Array(8);
  const secretHex = secret.toString('hex');
  const e2 = cpuMs(() => {
    for (const [k, v] of rows) addRowHash(crypto, secretHex, k, v, lanes, 1);
  });
  record('e. keyed hash of every row (rowHash, inline)', e2.ms);
  const e3 = cpuMs(() => {
    let n = 0;
    for (const [, v] of rows) n += (JSON.parse(v) as unknown[]).length;
    return n;
  });
  record('e. JSON.parse of every row alone', e3.ms);
  const e4 = cpuMs(() => {
    const v = emptyKeymetaView();
    const decoder = new KeymetaRowDecoder(v);
    for (const [k, value] of rows) if (!decoder.add(k, value)) throw new Error('row does not decode');
    return v;
  });
  record('e. KeymetaRowDecoder over every row (view built)', e4.ms);
  if (round === 0) {
    const rowBytes = rows.reduce((n, [k, v]) => n + k.length + v.length, 0);
    sizes = `stored text ${(text.length / 1e6).toFixed(1)} MB; ${view.scopes.size} scopes, ${view.keyIndex.size} keys; rows ${(rowBytes / 1e6).toFixed(1)} MB`;
    const insert = rowsDb.prepare('INSERT INTO r VALUES (?, ?, ?)');
    rowsDb.transaction(() => {
      for (const [k, v] of rows) insert.run('s', k, v);
    })();
  }
  const all = rowsDb.prepare('SELECT key, value FROM r WHERE name = ?').raw();
  const f1 = cpuMs(() => all.all('s').length);
  record('f. sqlite: read every row (one statement)', f1.ms);
  const one = rowsDb.prepare('SELECT value FROM r WHERE name = ? AND key = ?').pluck();
  const f2 = cpuMs(() => {
    let n = 0;
    for (const [k] of rows) n += (one.get('s', k) as string).length;
    return n;
  });
  record('f. sqlite: read every row by key (one get each)', f2.ms);
}

// g. the replay after the snapshot: 60,000 events (about a third of the spacing at the end).
const view = keymetaFromSnapshot(
  (JSON.parse(select.get(name) as string) as { body: JsonValue }).body,
  last.position,
);
if (view === null) throw new Error('snapshot body not usable');
const REPLAYED = 60_000;
const before = process.cpuUsage();
const replay = new KeymetaReplay(view);
let n = 0;
for await (const recorded of store.readAll({ after: last.position, streamPrefix: PREFIX })) {
  replay.apply(parseLedgerEvent(recorded));
  if (++n >= REPLAYED) break;
}
const used = process.cpuUsage(before);
const replayMs = (used.user + used.system) / 1000;

console.log(sizes);
console.log(`historic snapshot ${name} (of ${marks.length}); ${uptime()}`);
for (const [figure, list] of figures) {
  const sorted = [...list].sort((x, y) => x - y);
  console.log(`${figure}: ${median(list).toFixed(0)} ms CPU (${sorted.map((m) => m.toFixed(0)).join(', ')})`);
}
console.log(
  `g. replay of ${n} events after it: ${replayMs.toFixed(0)} ms CPU, ${(((n / replayMs) * 1000) / 1000).toFixed(1)} k events per CPU-s`,
);
db.close();
rowsDb.close();
await store.close();

/**
 * h. The row form (src/audit/asOfRows.ts), on the last historic snapshot: each step of a query's
 * start, CPU time of the process and wall, median of rounds; then a replay of the events after it
 * on the lazy view (60,000, or as many as there are).
 */
async function rowForm(): Promise<void> {
  if (last === undefined) return;
  const position = last.position;
  process.env[KEYSTORE_PASSWORD_ENV] = KEYSTORE_PASSWORD;
  const keystore = `${path}.p12`;
  const provider = keystoreProvider(keystore, dirname(keystore));
  const keys = await openingSnapshotKeys(store, streamNames(PREFIX).system, provider);
  const head = await store.headPosition();
  const wall: Map<string, number[]> = new Map();
  const step = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const before = process.cpuUsage();
    const started = process.hrtime.bigint();
    const value = await work();
    const used = process.cpuUsage(before);
    record(label, (used.user + used.system) / 1000);
    const list = wall.get(label) ?? [];
    list.push(Number(process.hrtime.bigint() - started) / 1e6);
    wall.set(label, list);
    return value;
  };
  let headerBytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const snapshot = await step('h. loadSnapshot of the header (sqlite + JSON.parse)', () =>
      store.loadSnapshot(name),
    );
    if (snapshot === null) throw new Error('no header');
    headerBytes = (select.get(name) as string).length;
    const checked = await step('h. checkSnapshot (event read, JSON.stringify of the body, MAC)', () =>
      checkSnapshot(store, PREFIX, name, snapshot, keys, head),
    );
    if (!checked.ok) throw new Error(checked.rejection.message);
    const loaded = await step('h. loadAsOfRows (every row by key, key index, worker fed)', () =>
      loadAsOfRows(store, PREFIX, checked.body, position, keys),
    );
    if (loaded.kind !== 'loaded') throw new Error(loaded.kind);
    const n = await step('h. replay after it on the lazy view (up to 20,000 events)', async () => {
      const replay = new KeymetaReplay(loaded.view);
      let count = 0;
      for await (const recorded of store.readAll({ after: position, streamPrefix: PREFIX })) {
        replay.apply(parseLedgerEvent(recorded));
        if (++count >= 20_000) break;
      }
      replay.view();
      return count;
    });
    const ok = await step('h. the rows’ digest (waiting for the worker)', () => loaded.matches());
    if (!ok) throw new Error('rows do not match');
    await step('h. reading every scope of the answer', async () => {
      let k = 0;
      for (const state of loaded.view.scopes.values()) k += state.keys.size;
      return k;
    });
    if (round === 0) console.log(`replayed ${n} events`);
  }
  await keys.close();
  const rowsCount = db
    .prepare("SELECT count(*) FROM snapshot_rows WHERE name LIKE 'kl-keymeta-asof-%'")
    .pluck()
    .get();
  const rowsBytes = db
    .prepare("SELECT sum(length(value)) FROM snapshot_rows WHERE name LIKE 'kl-keymeta-asof-%'")
    .pluck()
    .get();
  const headers = db
    .prepare(
      "SELECT count(*), sum(length(state)) FROM snapshots WHERE name LIKE 'kl-keymeta-asof-%' AND name <> 'kl-keymeta-asof-index'",
    )
    .raw()
    .get() as [number, number];
  console.log(
    `historic snapshot ${name} (row form, ${marks.length} in the series; header ${(headerBytes / 1e6).toFixed(1)} MB); series: ${headers[0]} headers ${(headers[1] / 1e6).toFixed(0)} MB, ${rowsCount} rows ${(Number(rowsBytes) / 1e6).toFixed(0)} MB; ${uptime()}`,
  );
  for (const [figure, list] of figures) {
    const sorted = [...list].sort((x, y) => x - y);
    console.log(
      `${figure}: ${median(list).toFixed(0)} ms CPU (${sorted.map((m) => m.toFixed(0)).join(', ')}), wall ${median(wall.get(figure) ?? []).toFixed(0)} ms`,
    );
  }
  db.close();
  await store.close();
}
