/**
 * Where a row-form historic snapshot's load goes (issue 17, fourth session): reading the rows a
 * header references, by key through the store port (awaited one by one) and straight from sqlite;
 * building the key index; hashing them inline. `node --import tsx scripts/bench/asOfRowsRead.ts <db>`.
 */
import * as crypto from 'node:crypto';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { loadAsOfRows } from '../../src/audit/asOfRows.js';
import { loadAsOfIndex } from '../../src/audit/asOfSnapshots.js';
import { addRowHash } from '../../src/audit/rowHash.js';
import { openingSnapshotKeys } from '../../src/audit/snapshotSeal.js';
import { asOfSnapshotName, streamNames } from '../../src/journal/streamNames.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { KEYSTORE_PASSWORD, KEYSTORE_PASSWORD_ENV, keystoreProvider } from './common.js';

const path = process.argv[2] ?? '/tmp/kl-audit-1m-rows.db';
const store = await SqliteEventStore.open(path);
const marks = (await loadAsOfIndex(store, 'kl-')).filter((m) => m.snapshot);
const last = marks.at(-1);
if (last === undefined) throw new Error('no series');
const header = await store.loadSnapshot(asOfSnapshotName('kl-', last.position));
if (header === null) throw new Error('no header');
const body = (header.state as { body: { asOfRows: { scopes: [string, string, string][] } } }).body;
const refs = body.asOfRows.scopes;
const db = new Database(path, { readonly: true });
process.env[KEYSTORE_PASSWORD_ENV] = KEYSTORE_PASSWORD;
const keys = await openingSnapshotKeys(
  store,
  streamNames('kl-').system,
  keystoreProvider(`${path}.p12`, dirname(path)),
);
const one = db.prepare('SELECT value FROM snapshot_rows WHERE name = ? AND key = ?').pluck();
const cpu = async (label: string, work: () => Promise<unknown> | unknown) => {
  const before = process.cpuUsage();
  const t = process.hrtime.bigint();
  await work();
  const u = process.cpuUsage(before);
  console.log(
    `${label}: ${((u.user + u.system) / 1000).toFixed(0)} ms CPU, ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(0)} ms wall`,
  );
};
for (let round = 0; round < 3; round++) {
  await cpu('port: loadSnapshotRow awaited per row', async () => {
    for (const [key, at] of refs) await store.loadSnapshotRow(asOfSnapshotName('kl-', BigInt(at)), key);
  });
  const values: string[] = [];
  await cpu('sqlite get per row (no await)', () => {
    for (const [key, at] of refs) values.push(one.get(`kl-keymeta-asof-${at}`, key) as string);
  });
  await cpu('key index (split, Map.set)', () => {
    const index = new Map<string, string>();
    for (const [key, , ids] of refs) if (ids !== '') for (const id of ids.split(' ')) index.set(id, key);
  });
  await cpu('row hash inline', () => {
    const lanes = new Uint32Array(8);
    const hex = crypto.randomBytes(32).toString('hex');
    refs.forEach(([key], i) => {
      addRowHash(crypto, hex, key, values[i] as string, lanes, 1);
    });
  });
  for (const [label, from] of [
    ['loadAsOfRows, rows hashed on the worker', 5_000],
    ['loadAsOfRows, rows hashed inline', Number.POSITIVE_INFINITY],
  ] as const) {
    await cpu(label, async () => {
      const loaded = await loadAsOfRows(store, 'kl-', body, last.position, keys, from);
      if (loaded.kind !== 'loaded' || !(await loaded.matches())) throw new Error('rows do not match');
    });
  }
}
await keys.close();
db.close();
await store.close();
