import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ChildLedger, useSqliteLedgerKeystore } from '../helpers/childLedger.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';

const keystore = useSqliteLedgerKeystore('keyledger-sqlite-');

let dbCount = 0;
function dbPath(): string {
  return join(keystore.dir, `ledger-${++dbCount}.db`);
}

describe('the ledger on sqlite', () => {
  it('a second process on the same file sees the first one’s events', async () => {
    const path = dbPath();
    const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    const ledger = await Ledger.open({ store, provider: keystore.provider() });
    await ledger.initialise();
    const child = await ChildLedger.start(path, keystore.keystorePath, keystore.password);
    try {
      const enabled = await ledger.admin.enableKeyManagement(CUST, NS);
      const rotated = await ledger.admin.rotateManagedKey(CUST, NS);
      assert.ok(rotated);
      await child.ask(`wait ${rotated.position}`);
      const status = await child.ask<{ marker: string; keys: { keyId: string; state: string }[] }>(
        `status ${CUST} ${NS}`,
      );
      assert.equal(status.marker, 'ACTIVE');
      assert.deepEqual(
        status.keys.map((k) => [k.keyId, k.state]),
        [
          [enabled.key?.keyId, 'INACTIVE'],
          [rotated.key.keyId, 'ACTIVE'],
        ],
      );
      // And the other way round: the child's rotations reach this process.
      const { rotated: n } = await child.ask<{ rotated: number }>(`rotate ${CUST} ${NS} 1`);
      assert.equal(n, 1);
      const head = await store.headPosition();
      await ledger.waitForPosition(head);
      const keys = await ledger.admin.getManagedKeys(CUST, NS);
      assert.equal(keys.length, 3);
      assert.equal(keys.filter((k) => k.state === 'ACTIVE').length, 1);
    } finally {
      await child.stop();
      await ledger.close();
      await store.close();
    }
  });

  it('concurrent rotations from four processes end with exactly one ACTIVE key', async () => {
    const path = dbPath();
    const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    const ledger = await Ledger.open({ store, provider: keystore.provider() });
    await ledger.initialise();
    await ledger.admin.enableKeyManagement(CUST, NS);
    const children = await Promise.all(
      [1, 2, 3, 4].map(() => ChildLedger.start(path, keystore.keystorePath, keystore.password)),
    );
    try {
      const head = await store.headPosition();
      await Promise.all(children.map((c) => c.ask(`wait ${head}`)));
      const answers = await Promise.all(
        children.map((c) => c.ask<{ rotated?: number; error?: string }>(`rotate ${CUST} ${NS} 3`)),
      );
      assert.deepEqual(
        answers.map((a) => a.rotated),
        [3, 3, 3, 3],
      );
      await ledger.waitForPosition(await store.headPosition());
      const keys = await ledger.admin.getManagedKeys(CUST, NS);
      assert.equal(keys.length, 13);
      assert.equal(keys.filter((k) => k.state === 'ACTIVE').length, 1);
      const scopeEvents = await store.readStream(ledger.streamNames.scope(keyScope(CUST, NS)));
      assert.deepEqual(
        scopeEvents.map((e) => e.revision),
        scopeEvents.map((_, i) => BigInt(i)),
      );
    } finally {
      await Promise.all(children.map((c) => c.stop()));
      await ledger.close();
      await store.close();
    }
  });

  it('restarts from its snapshot instead of replaying from the first event', async () => {
    const path = dbPath();
    const store = SqliteEventStore.open(path);
    const ledger = await Ledger.open({ store, provider: keystore.provider(), snapshotEvery: 5 });
    let reopened: Ledger | null = null;
    try {
      await ledger.initialise();
      for (const ns of ['a', 'b', 'c', 'd', 'e', 'f']) {
        await ledger.admin.enableKeyManagement(CUST, ns);
        await ledger.admin.rotateManagedKey(CUST, ns);
      }
      const expected = ledger.admin.listScopes();
      await ledger.close();
      let total = 0;
      for await (const _ of store.readAll()) total++;

      const counting = countingReads(store);
      reopened = await Ledger.open({ store: counting.store, provider: keystore.provider() });
      assert.deepEqual(reopened.admin.listScopes(), expected);
      assert.ok(counting.read() < total / 2, `replayed ${counting.read()} of ${total} events`);
      await reopened.admin.enableKeyManagement(CUST, 'g');
    } finally {
      await ledger.close();
      await reopened?.close();
      await store.close();
    }
  });

  it('stops at a stored event that fails its schema, naming stream and revision', async () => {
    const path = dbPath();
    const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    const ledger = await Ledger.open({ store, provider: keystore.provider() });
    await ledger.initialise();
    const stream = ledger.streamNames.scope(keyScope(CUST, NS));
    const bad = {
      eventId: '00000000-0000-4000-8000-000000000001',
      type: 'ManagedKeyDisabled',
      data: { custodian: CUST, namespace: NS, keyId: 'not-a-key-id', previousState: 'ACTIVE' },
      metadata: { schemaVersion: 1 },
    };
    const written = await store.append(stream, [bad], 'no_stream');
    // A running ledger stops when the event reaches it...
    await assert.rejects(
      () => ledger.waitForPosition(written.position),
      (error: { code?: string; details?: Record<string, unknown> }) => {
        assert.equal(error.code, 'ERR_EVENT_SCHEMA');
        assert.equal(error.details?.stream, stream);
        assert.equal(error.details?.revision, '0');
        return true;
      },
    );
    assert.throws(() => ledger.admin.listScopes(), { code: 'ERR_EVENT_SCHEMA' });
    await ledger.close();
    // ...and a new one refuses to open past it.
    await assert.rejects(() => Ledger.open({ store, provider: keystore.provider() }), {
      code: 'ERR_EVENT_SCHEMA',
    });
    await store.close();
  });
});

/** Wraps a store to count the events the ledger reads while catching up. */
function countingReads(inner: EventStore): { store: EventStore; read(): number } {
  let count = 0;
  const store: EventStore = {
    append: (...args) => inner.append(...args),
    readStream: (...args) => inner.readStream(...args),
    subscribe: (...args) => inner.subscribe(...args),
    headPosition: () => inner.headPosition(),
    deleteStream: (stream) => inner.deleteStream(stream),
    loadSnapshot: (name) => inner.loadSnapshot(name),
    saveSnapshot: (name, snapshot) => inner.saveSnapshot(name, snapshot),
    saveSnapshotRows: (name, header, rows, base) => inner.saveSnapshotRows(name, header, rows, base),
    snapshotRowReadAlone: inner.snapshotRowReadAlone,
    loadSnapshotRow: (name, key) => inner.loadSnapshotRow(name, key),
    readSnapshotRows: (name) => inner.readSnapshotRows(name),
    close: () => inner.close(),
    readAll: (options?: ReadAllOptions) => {
      const source = inner.readAll(options);
      return {
        async *[Symbol.asyncIterator](): AsyncIterator<RecordedEvent> {
          for await (const event of source) {
            count++;
            yield event;
          }
        },
      };
    },
  };
  return { store, read: () => count };
}
