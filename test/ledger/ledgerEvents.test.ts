import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { firstValueFrom, Observable, take, toArray } from 'rxjs';
import type { LedgerEvent } from '../../src/domain/events.js';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { ledgerEvents } from '../../src/ledger/ledgerEvents.js';
import type { EventStore, RecordedEvent } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const ORDERS = keyScope(CUST, 'orders');
const BILLING = keyScope(CUST, 'billing');

/** A store that counts its open subscriptions, to see that unsubscribing releases them. */
function trackingStore(inner: EventStore): EventStore & { readonly open: () => number } {
  let open = 0;
  return {
    open: () => open,
    append: (stream, events, expected) => inner.append(stream, events, expected),
    readStream: (stream, options) => inner.readStream(stream, options),
    readAll: (options) => inner.readAll(options),
    subscribe: (options) =>
      new Observable<RecordedEvent>((subscriber) => {
        open++;
        const subscription = inner.subscribe(options).subscribe(subscriber);
        return () => {
          open--;
          subscription.unsubscribe();
        };
      }),
    headPosition: () => inner.headPosition(),
    deleteStream: (stream) => inner.deleteStream(stream),
    loadSnapshot: (name) => inner.loadSnapshot(name),
    saveSnapshot: (name, snapshot) => inner.saveSnapshot(name, snapshot),
    saveSnapshotRows: (name, header, rows, base) => inner.saveSnapshotRows(name, header, rows, base),
    snapshotRowReadAlone: inner.snapshotRowReadAlone,
    loadSnapshotRow: (name, key) => inner.loadSnapshotRow(name, key),
    readSnapshotRows: (name) => inner.readSnapshotRows(name),
    close: () => inner.close(),
  };
}

async function setup() {
  const store = trackingStore(new MemoryEventStore());
  const provider = new ScriptedProvider();
  const ledger = await Ledger.open({ store, provider, actor: 'watcher' });
  await ledger.initialise();
  const baseline = store.open();
  const rotate = async (scope: typeof ORDERS, name: string) => {
    provider.setKey(scope, name);
    const status = await ledger.admin.getScopeStatus(scope.custodian, scope.namespace);
    if (status.marker === null) await ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
    else await ledger.admin.rotateManagedKey(scope.custodian, scope.namespace);
  };
  return { store, provider, ledger, baseline, rotate };
}

async function allEvents(store: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const e of store.readAll()) events.push(e);
  return events;
}

/** The first `n` events of an Observable, then unsubscribes. */
function first<T>(source: Observable<T>, n: number): Promise<T[]> {
  return firstValueFrom(source.pipe(take(n), toArray()));
}

describe('ledger.events$', () => {
  it('filters by type and by scope; events are parsed, typed, and carry their position', async () => {
    const { store, ledger, rotate } = await setup();
    await rotate(ORDERS, 'o1');
    await rotate(BILLING, 'b1');
    await rotate(ORDERS, 'o2');
    const rotations = await first(ledger.events$({ types: ['ManagedKeyRotated'], from: 'start' }), 1);
    assert.equal(rotations[0]?.type, 'ManagedKeyRotated');
    // Typed: `data.key` exists on a rotation (a compile-time check as much as a runtime one).
    assert.equal(rotations[0]?.data.key.metadataHash.length, 43);

    const aboutOrders = (await allEvents(store)).filter(
      (e) => (e.data as { namespace?: string }).namespace === 'orders',
    );
    const ordersOnly = await first(
      ledger.events$({ scopes: [{ custodian: CUST, namespace: 'orders' }], from: 'start' }),
      aboutOrders.length,
    );
    assert.deepEqual(
      ordersOnly.map((e) => e.position),
      aboutOrders.map((e) => e.position),
    );
    assert.ok(ordersOnly.every((e) => 'namespace' in e.data && e.data.namespace === 'orders'));
    assert.deepEqual(
      ordersOnly.map((e) => e.type),
      ['KeyMaterialWrapped', 'KeyManagementEnabled', 'KeyMaterialWrapped', 'ManagedKeyRotated'],
    );
    const both = await first(
      ledger.events$({ types: ['KeyManagementEnabled'], scopes: [ORDERS, BILLING], from: 'start' }),
      2,
    );
    assert.deepEqual(
      both.map((e) => (e.data as { namespace: string }).namespace),
      ['orders', 'billing'],
    );
    await ledger.close();
  });

  it('resumes exactly after a position: no gaps, no repeats', async () => {
    const { store, ledger, rotate } = await setup();
    for (let i = 0; i < 4; i++) await rotate(ORDERS, `o${i}`);
    const everything = (await allEvents(store)).map((e) => e.position);
    const head = await first(ledger.events$({ from: 'start' }), 3);
    const resumeAfter = head.at(-1)?.position;
    assert.ok(resumeAfter !== undefined);
    // More events land while nobody is subscribed.
    await rotate(ORDERS, 'o9');
    const total = (await allEvents(store)).length;
    const rest = await first(ledger.events$({ from: resumeAfter }), total - head.length);
    const seen = [...head, ...rest].map((e) => e.position);
    assert.deepEqual(seen, [
      ...everything,
      ...(await allEvents(store)).slice(everything.length).map((e) => e.position),
    ]);
    assert.equal(new Set(seen).size, seen.length);
    await ledger.close();
  });

  it("'now' delivers only what is written after subscribing, as it is written", async () => {
    const { ledger, rotate } = await setup();
    await rotate(ORDERS, 'o1');
    const received: LedgerEvent[] = [];
    const arrived = new Promise<void>((resolve) => {
      const subscription = ledger.events$({ types: ['ManagedKeyRotated'] }).subscribe((event) => {
        received.push(event);
        subscription.unsubscribe();
        resolve();
      });
    });
    // A rotation to the same key records nothing, so nothing arrives for it.
    assert.equal(await ledger.admin.rotateManagedKey(CUST, 'orders'), null);
    await rotate(ORDERS, 'o2');
    await arrived;
    assert.equal(received.length, 1);
    assert.equal(received[0]?.type, 'ManagedKeyRotated');
    await ledger.close();
  });

  it('unsubscribing releases the store subscription; nothing more is delivered', async () => {
    const { store, ledger, baseline, rotate } = await setup();
    const received: LedgerEvent[] = [];
    const subscription = ledger.events$({ from: 'start' }).subscribe((e) => received.push(e));
    assert.equal(store.open(), baseline + 1);
    await rotate(ORDERS, 'o1');
    await ledger.waitForPosition(await store.headPosition());
    await new Promise((r) => setImmediate(r));
    subscription.unsubscribe();
    assert.equal(store.open(), baseline);
    const count = received.length;
    assert.ok(count > 0);
    await rotate(ORDERS, 'o2');
    await new Promise((r) => setImmediate(r));
    assert.equal(received.length, count);
    await ledger.close();
  });

  it('refuses bad options when called, before subscribing to anything', async () => {
    const { store, ledger, baseline } = await setup();
    const misuse = [
      { types: 'ManagedKeyRotated' },
      { types: [] },
      { scopes: [{ custodian: CUST, ns: 'x' }] },
      { from: -1 },
      { from: 'later' },
      { after: 3n },
      'start',
    ];
    for (const options of misuse)
      assert.throws(() => ledger.events$(options as never), TypeError, String(options));
    const invalid: [unknown, string][] = [
      [{ types: ['KeyRotated'] }, 'ERR_INVALID_ARGUMENT'],
      [{ from: -1n }, 'ERR_INVALID_ARGUMENT'],
      [{ scopes: [{ custodian: 'not base64!' }] }, 'ERR_INVALID_CUSTODIAN'],
      [{ scopes: [{ custodian: CUST, namespace: '' }] }, 'ERR_INVALID_NAMESPACE'],
    ];
    for (const [options, code] of invalid) {
      assert.throws(
        () => ledger.events$(options as never),
        (e: { code?: string }) => e.code === code,
        code,
      );
    }
    assert.equal(store.open(), baseline, 'no subscription was opened');
    await ledger.close();
  });

  it('an event that fails its schema ends the Observable with ERR_EVENT_SCHEMA', async () => {
    const store = new MemoryEventStore();
    await store.append(
      'kl-system',
      [{ eventId: crypto.randomUUID(), type: 'SystemKeyRotated', data: { sequence: 'one' }, metadata: {} }],
      'any',
    );
    await assert.rejects(firstValueFrom(ledgerEvents(store, 'kl-', () => 0n, { from: 'start' })), {
      code: 'ERR_EVENT_SCHEMA',
    });
    await store.close();
  });
});

describe('ledger.events$ on sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-events-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('delivers, live, what another process writes to the same file', async () => {
    const path = join(dir, 'ledger.db');
    const provider = new ScriptedProvider();
    const writerStore = SqliteEventStore.open(path);
    const readerStore = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    const writer = await Ledger.open({ store: writerStore, provider });
    await writer.initialise();
    const reader = await Ledger.open({ store: readerStore, provider });
    const next = firstValueFrom(reader.events$({ types: ['KeyManagementEnabled'] }));
    provider.setKey(ORDERS, 'o1');
    const written = await writer.admin.enableKeyManagement(CUST, 'orders');
    const event = await next;
    assert.equal(event.position, written.position);
    assert.equal(event.type, 'KeyManagementEnabled');
    await reader.close();
    await writer.close();
    await readerStore.close();
    await writerStore.close();
  });
});
