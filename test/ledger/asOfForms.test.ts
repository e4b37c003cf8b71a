import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { emptyKeymetaView, evolveKeymeta } from '../../projections/keymeta.js';
import { isAsOfRowsBody } from '../../src/audit/asOfRows.js';
import { loadAsOfIndex } from '../../src/audit/asOfSnapshots.js';
import { parseLedgerEvent } from '../../src/domain/events.js';
import { keyScope } from '../../src/domain/identities.js';
import { asOfSnapshotName } from '../../src/journal/streamNames.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { startEsdbTestServer } from '../esdb/esdbTestServer.js';
import { plainScopes } from '../helpers/keymetaViews.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * Which form the as-of series is written in follows the store (src/audit/asOfSnapshots.ts): the
 * row form where one row reads alone (EventStore.snapshotRowReadAlone: sqlite), the document form
 * where a row read costs its whole snapshot (memory, EventStoreDB). The same ledger written on
 * both must give the same as-of answers, each from its own series.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const A = keyScope(CUST, 'orders');
const B = keyScope(CUST, 'billing');

let dir: string;

/** Counts the events read, to see that a query starts from a historic snapshot. */
class CountingReads extends ForwardingEventStore {
  read = 0;
  override readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent> {
    const inner = super.readAll(options);
    const self = this;
    return {
      [Symbol.asyncIterator]: async function* () {
        for await (const e of inner) {
          self.read++;
          yield e;
        }
      },
    };
  }
}

/** The same commands, at the same pinned times, on a fresh ledger over `store`. */
async function write(store: EventStore, provider: ScriptedProvider): Promise<void> {
  let tick = Date.parse('2026-12-01T00:00:00Z');
  const now = () => {
    tick += 1000;
    return new Date(tick);
  };
  const ledger = await Ledger.open({ store, provider, actor: 'test', checkpointEvery: 0, asOfEvery: 1, now });
  try {
    await ledger.initialise();
    provider.setKey(B, 'b1');
    await ledger.admin.enableKeyManagement(B.custodian, B.namespace);
    for (let i = 0; i < 6; i++) {
      provider.setKey(A, `a${i}`);
      if (i === 0) await ledger.admin.enableKeyManagement(A.custodian, A.namespace);
      else await ledger.admin.rotateManagedKey(A.custodian, A.namespace);
    }
  } finally {
    await ledger.close();
  }
}

/** The stored bodies of the series' historic snapshots, and their positions. */
async function series(store: EventStore): Promise<{ position: bigint; body: unknown; rows: number }[]> {
  const found = [];
  for (const mark of await loadAsOfIndex(store, 'kl-')) {
    if (!mark.snapshot) continue;
    const name = asOfSnapshotName('kl-', mark.position);
    const stored = await store.loadSnapshot(name);
    assert.ok(stored !== null, `${name} is stored`);
    let rows = 0;
    for await (const page of store.readSnapshotRows(name)) rows += page.length;
    found.push({ position: mark.position, body: (stored.state as { body: unknown }).body, rows });
  }
  return found;
}

/**
 * The as-of answer at every event (in event order: EventStoreDB's positions differ from the
 * others'), each checked against a replay; and how many events a query at the head read beyond
 * those after `last` (the historic snapshot it should start from): 1, the event it is bound to.
 */
async function answers(
  store: EventStore,
  provider: ScriptedProvider,
  last: bigint,
): Promise<{ all: unknown[]; extraReads: number }> {
  const events: RecordedEvent[] = [];
  for await (const e of store.readAll()) events.push(e);
  const counting = new CountingReads(store);
  const ledger = await Ledger.open({
    store: counting,
    provider,
    actor: 'test',
    checkpointEvery: 0,
    asOfEvery: 0,
  });
  try {
    const all: unknown[] = [];
    let truth = emptyKeymetaView();
    for (const e of events) {
      truth = evolveKeymeta(truth, parseLedgerEvent(e));
      const got = plainScopes((await ledger.asOf(e.position)).scopes);
      assert.deepEqual(got, plainScopes(truth.scopes), `as of ${e.position}`);
      all.push(got);
    }
    const head = events.at(-1)?.position ?? 0n;
    counting.read = 0;
    await ledger.asOf(head);
    assert.deepEqual(ledger.snapshotRejections, []);
    return { all, extraReads: counting.read - events.filter((e) => e.position > last).length };
  } finally {
    await ledger.close();
  }
}

function lastOf(stored: readonly { position: bigint }[]): bigint {
  return stored.at(-1)?.position ?? 0n;
}

/** The document form: the whole view (scopes, no materials) in each snapshot, no rows. */
function assertDocumentForm(stored: readonly { body: unknown; rows: number }[]): void {
  for (const s of stored) {
    assert.equal(isAsOfRowsBody(s.body), false);
    const body = s.body as { scopes?: unknown; materials?: unknown };
    assert.ok(Array.isArray(body.scopes), 'the body lists the scopes');
    assert.deepEqual(body.materials, []);
    assert.equal(s.rows, 0);
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-asof-forms-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the as-of series form follows the store (asOfSnapshots.ts)', () => {
  it('memory writes the document form, sqlite the row form; the as-of answers are equal', async () => {
    const memory = new MemoryEventStore();
    const sqlite = SqliteEventStore.open(join(dir, 'ledger.db'));
    try {
      assert.equal(memory.snapshotRowReadAlone, false);
      assert.equal(sqlite.snapshotRowReadAlone, true);
      // One provider: both ledgers' system key and key material are the same, so are the answers.
      const provider = new ScriptedProvider();
      await write(memory, provider);
      await write(sqlite, provider);

      const onMemory = await series(memory);
      const onSqlite = await series(sqlite);
      assert.ok(onMemory.length >= 2 && onSqlite.length >= 4, 'both ledgers left a series');
      assertDocumentForm(onMemory);
      for (const s of onSqlite) assert.equal(isAsOfRowsBody(s.body), true);
      // The row form writes rows (the first snapshot with a scope holds its row).
      assert.ok(onSqlite.some((s) => s.rows > 0));

      // Each query at the head started from its store's latest historic snapshot: only the event
      // it is bound to and those after it were read.
      const fromMemory = await answers(memory, provider, lastOf(onMemory));
      const fromSqlite = await answers(sqlite, provider, lastOf(onSqlite));
      assert.deepEqual(fromMemory.all, fromSqlite.all);
      assert.equal(fromMemory.extraReads, 1);
      assert.equal(fromSqlite.extraReads, 1);
    } finally {
      await sqlite.close();
      await memory.close();
    }
  });

  it('EventStoreDB (the protocol test server) writes the document form too, and answers from it', async () => {
    const server = await startEsdbTestServer();
    const esdb = EsdbEventStore.open(server.connectionString);
    const memory = new MemoryEventStore();
    try {
      assert.equal(esdb.snapshotRowReadAlone, false);
      const provider = new ScriptedProvider();
      await write(esdb, provider);
      await write(memory, provider);
      const onEsdb = await series(esdb);
      assert.ok(onEsdb.length >= 2, 'the ledger left a series');
      assertDocumentForm(onEsdb);
      const fromEsdb = await answers(esdb, provider, lastOf(onEsdb));
      assert.deepEqual(fromEsdb.all, (await answers(memory, provider, lastOf(await series(memory)))).all);
      assert.equal(fromEsdb.extraReads, 1);
    } finally {
      await esdb.close();
      await server.close();
      await memory.close();
    }
  });
});
