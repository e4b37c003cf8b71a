import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { emptyKeymetaView } from '../../projections/keymeta.js';
import { KeymetaRowDecoder, keymetaRowOf } from '../../projections/keymetaRows.js';
import { RowDigest, storedRowsMatch } from '../../src/audit/snapshotRows.js';
import type { KeyId, Namespace, ScopeKey } from '../../src/domain/identities.js';
import { keyScope } from '../../src/domain/identities.js';
import type { ManagedKey, ScopeState } from '../../src/domain/scopeState.js';
import { SNAPSHOT_ROW_BATCH, type SnapshotRow } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';

/**
 * Issue 18, Ledger.open at a million scopes: the row snapshot's rows are hashed on a worker thread
 * when there are many (rowHashWorker.ts) and decoded by a decoder that shares repeated strings
 * (projections/keymetaRows.ts). Both must be invisible: the worker's digest is RowDigest's, any
 * tampering is still found, and a decoded state equals the state the row was made from.
 */

const SECRET = Buffer.alloc(32, 7);
const NAME = 'kl-keymeta';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-rows-open-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Rows spanning several store pages, with non-ASCII text (hashed as UTF-8). */
function sampleRows(n: number): SnapshotRow[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `c${i}:ns-${i % 3}`,
    value: JSON.stringify([`c${i}`, `ns-${i % 3}`, i % 5 === 0 ? 'Zürich ✓' : 'plain', i]),
  }));
}

function digestOf(rows: readonly SnapshotRow[]): RowDigest {
  const digest = new RowDigest(SECRET);
  for (const { key, value } of rows) digest.add(key, value);
  return digest;
}

async function storeWith(rows: readonly SnapshotRow[], file: string): Promise<SqliteEventStore> {
  const store = SqliteEventStore.open(join(dir, file));
  assert.equal(await store.saveSnapshotRows(NAME, { position: 1n, state: { rows: true } }, rows, null), true);
  return store;
}

describe('row snapshot open: rows hashed on a worker thread', () => {
  const rows = sampleRows(SNAPSHOT_ROW_BATCH * 2 + 17);
  const sealed = digestOf(rows);
  const header = { count: sealed.count, digest: sealed.digestHex(), stkIdentity: '0123456789abcdef' };

  it('adds up to the digest RowDigest computes, and hands every row to the decoder', async () => {
    const store = await storeWith(rows, 'same.db');
    after(() => store.close());
    const seen: string[] = [];
    const each = (key: string): boolean => {
      seen.push(key);
      return true;
    };
    assert.equal(await storedRowsMatch(store, NAME, header, SECRET, each, 0), true, 'on the worker');
    assert.deepEqual(seen.sort(), rows.map((r) => r.key).sort());
    assert.equal(await storedRowsMatch(store, NAME, header, SECRET, () => true, Infinity), true, 'inline');
    assert.equal(await storedRowsMatch(store, NAME, header, Buffer.alloc(32, 8), () => true, 0), false);
  });

  // The sealed rows are `current`: row 0 changed since an older snapshot (`rows`).
  const current = rows.map((row, i) => (i === 0 ? { ...row, value: `${row.value} ` } : row));
  const currentDigest = digestOf(current);
  const currentHeader = { ...header, count: currentDigest.count, digest: currentDigest.digestHex() };
  const swap = (r: SnapshotRow[], a: number, b: number): SnapshotRow[] =>
    r.map((row, i) =>
      i === a
        ? { ...row, value: (r[b] as SnapshotRow).value }
        : i === b
          ? { ...row, value: (r[a] as SnapshotRow).value }
          : row,
    );
  const attacks: [string, (r: SnapshotRow[]) => SnapshotRow[]][] = [
    [
      'a row edited',
      (r) => r.map((row, i) => (i === 6 ? { ...row, value: row.value.replace('plain', 'plaiN') } : row)),
    ],
    ['a row dropped', (r) => r.filter((_, i) => i !== 2100)],
    ['a row added', (r) => [...r, { key: 'x:y', value: '["x","y"]' }]],
    [
      'a row put back from an older snapshot',
      (r) => r.map((row, i) => (i === 0 ? (rows[0] as SnapshotRow) : row)),
    ],
    ['two rows trading their values', (r) => swap(r, 1, 2)],
  ];
  for (const [attack, edit] of attacks) {
    it(`${attack}: the rows no longer add up, on the worker as inline`, async () => {
      const store = await storeWith(edit(current), `${attack.replaceAll(' ', '-')}.db`);
      after(() => store.close());
      assert.equal(await storedRowsMatch(store, NAME, currentHeader, SECRET, () => true, 0), false);
      assert.equal(await storedRowsMatch(store, NAME, currentHeader, SECRET, () => true, Infinity), false);
    });
  }

  it('the sealed rows themselves add up', async () => {
    const store = await storeWith(current, 'current.db');
    after(() => store.close());
    assert.equal(await storedRowsMatch(store, NAME, currentHeader, SECRET, () => true, 0), true);
  });

  it('a row the decoder cannot use rejects the rows, and the worker is stopped', async () => {
    const store = await storeWith(rows, 'unusable.db');
    after(() => store.close());
    const each = (key: string): boolean => key !== 'c3:ns-0';
    assert.equal(await storedRowsMatch(store, NAME, header, SECRET, each, 0), false);
  });
});

describe('row snapshot open: the decoder', () => {
  const scope = keyScope(Buffer.from('tenant-ü').toString('base64'), 'orders');
  const key = (id: string, state: ManagedKey['state'], at: string, later: string): ManagedKey => ({
    keyId: id as KeyId,
    metadata: `{"KeyAlias":"${id}"}`,
    metadataHash: `hash-${id}` as ManagedKey['metadataHash'],
    checksum: '0011223344556677',
    stkIdentity: '93671a64a8d73caa',
    state,
    createdAt: at,
    refreshedAt: at,
    updatedAt: later,
    destruction: state === 'INACTIVE' ? { scheduledAt: later, dueAt: '2027-01-01T00:00:00.000Z' } : null,
  });
  const states: ScopeState[] = [
    {
      scope,
      marker: 'ACTIVE',
      keys: new Map([
        ['k1' as KeyId, key('k1', 'INACTIVE', '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z')],
        ['k2' as KeyId, key('k2', 'ACTIVE', '2026-02-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z')],
      ]),
      activeKeyId: 'k2' as KeyId,
      providerDemotedKeyId: null,
      revision: 12_345_678_901n,
    },
    {
      scope: keyScope(scope.custodian, 'billing' as Namespace),
      marker: 'DISABLED',
      keys: new Map([
        ['k3' as KeyId, key('k3', 'DESTROYED', '2026-03-01T00:00:00.000Z', '2026-03-02T00:00:00.000Z')],
      ]),
      activeKeyId: null,
      providerDemotedKeyId: 'k3' as KeyId,
      revision: 7n,
    },
    {
      scope: keyScope(scope.custodian, 'empty' as Namespace),
      marker: null,
      keys: new Map(),
      activeKeyId: null,
      providerDemotedKeyId: null,
      revision: null,
    },
  ];
  const materials = new Map([['k2' as KeyId, { wrapped: 'd3JhcHBlZA==', stkIdentity: '93671a64a8d73caa' }]]);

  it('gives back the states and materials the rows were made from', () => {
    const view = emptyKeymetaView();
    const decoder = new KeymetaRowDecoder(view);
    for (const state of states) {
      const sk = `${state.scope.custodian}:${state.scope.namespace}` as ScopeKey;
      assert.equal(decoder.add(sk, keymetaRowOf(state, materials)), true);
    }
    for (const state of states)
      assert.deepEqual(
        view.scopes.get(`${state.scope.custodian}:${state.scope.namespace}` as ScopeKey),
        state,
      );
    assert.deepEqual(view.materials, materials);
    assert.deepEqual([...view.keyIndex.keys()].sort(), ['k1', 'k2', 'k3']);
  });

  it('refuses a row stored under another scope’s key, a bad state or a bad revision', () => {
    const row = keymetaRowOf(states[1] as ScopeState, materials);
    const decoder = new KeymetaRowDecoder(emptyKeymetaView());
    assert.equal(decoder.add(`${scope.custodian}:orders`, row), false);
    assert.equal(decoder.add(`${scope.custodian}:billin`, row), false);
    assert.equal(decoder.add(`${scope.custodian}:billing`, row.replace('"DESTROYED"', '"GONE"')), false);
    assert.equal(decoder.add(`${scope.custodian}:billing`, row.replace('"7"', '"7a"')), false);
    assert.equal(decoder.add(`${scope.custodian}:billing`, row), true);
  });
});
