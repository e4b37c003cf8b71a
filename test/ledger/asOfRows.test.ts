import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { emptyKeymetaView, evolveKeymeta } from '../../projections/keymeta.js';
import { keymetaToSnapshot } from '../../projections/keymetaSnapshot.js';
import { loadAsOfRows } from '../../src/audit/asOfRows.js';
import { loadAsOfIndex } from '../../src/audit/asOfSnapshots.js';
import { eventHash } from '../../src/audit/hashChain.js';
import { openingSnapshotKeys, sealSnapshot } from '../../src/audit/snapshotSeal.js';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { parseLedgerEvent } from '../../src/domain/events.js';
import { keyScope } from '../../src/domain/identities.js';
import { asOfSnapshotName, streamNames } from '../../src/journal/streamNames.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore, JsonValue, ReadAllOptions, RecordedEvent } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { plainScopes } from '../helpers/keymetaViews.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import { deleteSnapshot, editSnapshotRows, readSnapshot, readSnapshotRows } from '../helpers/tamperSqlite.js';

/**
 * The row form of historic snapshots (src/audit/asOfRows.ts): a sealed header that references, per
 * scope, a row stored with this or an earlier historic snapshot, bound by the rows' keyed digest.
 * Each attack edits the rows as someone with write access to the file would; the query must not
 * use the snapshot (its answer stays the replay's), say so, and verify must report it with the
 * code it uses for the keymeta row snapshot: 'snapshot-rows-mismatch'.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const A = keyScope(CUST, 'orders');
const B = keyScope(CUST, 'billing');
const A_KEY = `${CUST}:orders`;

let dir: string;
let files = 0;
let template: string;
let provider: ScriptedProvider;

function open(store: EventStore, asOfEvery: number): Promise<Ledger> {
  return Ledger.open({ store, provider, actor: 'test', checkpointEvery: 0, asOfEvery });
}

async function allRecorded(store: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const e of store.readAll()) events.push(e);
  return events;
}

function replayed(events: readonly RecordedEvent[], upTo: bigint) {
  let view = emptyKeymetaView();
  for (const e of events) if (e.position <= upTo) view = evolveKeymeta(view, parseLedgerEvent(e));
  return view;
}

/** A historic snapshot's header references: scope key → position of the snapshot holding its row. */
function refsOf(path: string, position: bigint): Map<string, bigint> {
  const state = readSnapshot(path, asOfSnapshotName('kl-', position)).state as {
    body: { asOfRows: { scopes: [string, string, string][] } };
  };
  return new Map(state.body.asOfRows.scopes.map(([key, at]) => [key, BigInt(at)]));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-asof-rows-'));
  provider = new ScriptedProvider();
  // Two scopes; A changes often, B once: later snapshots reference B's row in an early one.
  template = join(dir, 'template.db');
  const store = SqliteEventStore.open(template);
  const ledger = await open(store, 1);
  await ledger.initialise();
  provider.setKey(B, 'b1');
  await ledger.admin.enableKeyManagement(B.custodian, B.namespace);
  for (let i = 0; i < 6; i++) {
    provider.setKey(A, `a${i}`);
    if (i === 0) await ledger.admin.enableKeyManagement(A.custodian, A.namespace);
    else await ledger.admin.rotateManagedKey(A.custodian, A.namespace);
  }
  await ledger.close();
  await store.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the template ledger, its latest historic snapshot and the truth at the head. */
async function copy() {
  const path = join(dir, `ledger-${++files}.db`);
  copyFileSync(template, path);
  const store = SqliteEventStore.open(path);
  try {
    const marks = (await loadAsOfIndex(store, 'kl-')).filter((m) => m.snapshot);
    const head = await store.headPosition();
    const truth = replayed(await allRecorded(store), head);
    const last = marks.at(-1)?.position;
    assert.ok(last !== undefined && marks.length >= 4, 'the ledger left a series');
    return { path, head, truth, last, marks: marks.map((m) => m.position) };
  } finally {
    await store.close();
  }
}

/** Queries at the head and verifies: the answer is the replay's; what was rejected and reported. */
async function check(path: string, head: bigint, truth: ReturnType<typeof replayed>) {
  const store = SqliteEventStore.open(path);
  try {
    const ledger = await open(store, 0);
    try {
      const got = await ledger.asOf(head);
      assert.deepEqual(plainScopes(got.scopes), plainScopes(truth.scopes));
      const rejected = ledger.snapshotRejections.map((r) => [r.kind, r.snapshot]);
      const report = await verifyStore(store, { provider });
      return { rejected, problems: report.problems.map((p) => [p.kind, p.stream]) };
    } finally {
      await ledger.close();
    }
  } finally {
    await store.close();
  }
}

/** The query skipped `snapshot` for its rows, and verify reported it, and nothing else. */
function skippedAndReported(rejected: unknown[][], problems: unknown[][], snapshot: string): void {
  assert.ok(rejected.some(([kind, s]) => kind === 'snapshot-rows-mismatch' && s === snapshot));
  assert.ok(problems.some(([kind, s]) => kind === 'snapshot-rows-mismatch' && s === snapshot));
  assert.ok(problems.every(([kind]) => kind === 'snapshot-rows-mismatch'));
}

describe('historic snapshots as rows (asOfRows.ts)', () => {
  it('a later snapshot writes only the rows that changed and references the others', async () => {
    const { path, head, truth, last } = await copy();
    const refs = refsOf(path, last);
    assert.equal(refs.size, 2);
    const bAt = refs.get(`${CUST}:billing`) as bigint;
    assert.ok(bAt < last, 'B did not change: its row is an earlier snapshot’s');
    assert.ok(!readSnapshotRows(path, asOfSnapshotName('kl-', last)).has(`${CUST}:billing`));
    const { rejected, problems } = await check(path, head, truth);
    assert.deepEqual(rejected, []);
    assert.deepEqual(problems, []);
  });

  it('a changed row: the query skips every snapshot that references it, verify reports each', async () => {
    const { path, head, truth, last } = await copy();
    const at = refsOf(path, last).get(A_KEY) as bigint;
    const name = asOfSnapshotName('kl-', at);
    editSnapshotRows(path, name, (rows) => {
      const row = rows.get(A_KEY) as string;
      assert.ok(row.includes('"ACTIVE"'));
      rows.set(A_KEY, row.replace('"ACTIVE"', '"DISABLED"'));
    });
    const { rejected, problems } = await check(path, head, truth);
    skippedAndReported(rejected, problems, asOfSnapshotName('kl-', last));
  });

  it('a dropped row: the snapshot is skipped and reported', async () => {
    const { path, head, truth, last } = await copy();
    const at = refsOf(path, last).get(`${CUST}:billing`) as bigint;
    editSnapshotRows(path, asOfSnapshotName('kl-', at), (rows) => {
      assert.ok(rows.delete(`${CUST}:billing`));
    });
    const { rejected, problems } = await check(path, head, truth);
    skippedAndReported(rejected, problems, asOfSnapshotName('kl-', last));
  });

  it('a row from another snapshot (the scope’s genuine older row put in its place): skipped and reported', async () => {
    const { path, head, truth, last, marks } = await copy();
    const at = refsOf(path, last).get(A_KEY) as bigint;
    const current = readSnapshotRows(path, asOfSnapshotName('kl-', at)).get(A_KEY);
    const older = marks
      .filter((m) => m < at)
      .map((m) => readSnapshotRows(path, asOfSnapshotName('kl-', m)).get(A_KEY))
      .find((row) => row !== undefined && row !== current);
    assert.ok(older !== undefined, 'an older row of A is stored');
    editSnapshotRows(path, asOfSnapshotName('kl-', at), (rows) => {
      rows.set(A_KEY, older);
    });
    const { rejected, problems } = await check(path, head, truth);
    skippedAndReported(rejected, problems, asOfSnapshotName('kl-', last));
  });

  it('the rows hashed on a worker thread (a large view) add up as inline, and a changed row does not', async () => {
    const { path, last } = await copy();
    const name = asOfSnapshotName('kl-', last);
    const check = async () => {
      const store = SqliteEventStore.open(path);
      const keys = await openingSnapshotKeys(store, streamNames('kl-').system, provider);
      try {
        const header = await store.loadSnapshot(name);
        const body = (header?.state as { body: unknown } | undefined)?.body;
        const results: boolean[] = [];
        for (const parallelFrom of [1, Number.POSITIVE_INFINITY]) {
          const loaded = await loadAsOfRows(store, 'kl-', body, last, keys, parallelFrom);
          assert.equal(loaded.kind, 'loaded');
          if (loaded.kind === 'loaded') results.push(await loaded.matches());
        }
        return results;
      } finally {
        await keys.close();
        await store.close();
      }
    };
    assert.deepEqual(await check(), [true, true]);
    const at = refsOf(path, last).get(A_KEY) as bigint;
    editSnapshotRows(path, asOfSnapshotName('kl-', at), (rows) => {
      rows.set(A_KEY, (rows.get(A_KEY) as string).replace('"ACTIVE"', '"DISABLED"'));
    });
    assert.deepEqual(await check(), [false, false]);
  });

  it('a historic snapshot of the document form (written before the row form) is still used', async () => {
    const { path, head, truth, last } = await copy();
    const store = SqliteEventStore.open(path);
    try {
      // The latest historic snapshot replaced by the document form of the same view, sealed as
      // the series sealed it before the row form.
      const events = await allRecorded(store);
      const at = events.find((e) => e.position === last) as RecordedEvent;
      const opening = await openingSnapshotKeys(store, streamNames('kl-').system, provider);
      const name = asOfSnapshotName('kl-', last);
      // Opening keys check, they do not seal: the seal is made under the key the row form used.
      const stk = (readSnapshot(path, name).state as { seal: { stkIdentity: string } }).seal.stkIdentity;
      const keys = { ...opening, current: async () => stk };
      const view = replayed(events, last);
      const body = keymetaToSnapshot({ ...view, materials: new Map() });
      const sealed = await sealSnapshot(
        keys,
        name,
        last,
        { stream: at.streamName, revision: at.revision, hash: eventHash(at) },
        body as JsonValue,
      );
      await keys.close();
      deleteSnapshot(path, name);
      await store.saveSnapshot(name, sealed);
      // Only the events after it are read: the query starts from the document.
      let read = 0;
      const counting = new (class extends ForwardingEventStore {
        override readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent> {
          const inner = super.readAll(options);
          return {
            [Symbol.asyncIterator]: async function* () {
              for await (const e of inner) {
                read++;
                yield e;
              }
            },
          };
        }
      })(store);
      const ledger = await open(counting, 0);
      try {
        read = 0;
        const got = await ledger.asOf(head);
        assert.deepEqual(plainScopes(got.scopes), plainScopes(truth.scopes));
        assert.deepEqual(ledger.snapshotRejections, []);
        assert.equal(read, 1 + Number(head - last));
      } finally {
        await ledger.close();
      }
    } finally {
      await store.close();
    }
  });
});
