import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { emptyKeymetaView, evolveKeymeta, scopeOf } from '../../projections/keymeta.js';
import { parseAsOf } from '../../src/audit/asOf.js';
import { loadAsOfIndex } from '../../src/audit/asOfSnapshots.js';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { type LedgerEvent, parseLedgerEvent } from '../../src/domain/events.js';
import { type KeyScope, keyScope } from '../../src/domain/identities.js';
import { asOfIndexName, asOfSnapshotName } from '../../src/journal/streamNames.js';
import { toKeyInfo } from '../../src/ledger/keyInfo.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type {
  EventStore,
  ReadAllOptions,
  RecordedEvent,
  Snapshot,
  SnapshotRowChange,
} from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { plainScopes } from '../helpers/keymetaViews.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const SCOPES: readonly KeyScope[] = [
  keyScope(Buffer.from('tenant-1').toString('base64'), 'orders'),
  keyScope(Buffer.from('tenant-1').toString('base64'), '*'),
  keyScope(Buffer.from('tenant-2').toString('base64'), 'orders'),
];
const START = Date.UTC(2026, 0, 1);

/** A clock tests move by hand; times may go back, as two writers' clocks interleave. */
class Clock {
  ms = START;
  now = () => new Date(this.ms);
}

async function allEvents(store: EventStore): Promise<LedgerEvent[]> {
  const events: LedgerEvent[] = [];
  for await (const recorded of store.readAll()) events.push(parseLedgerEvent(recorded));
  return events;
}

/** The reference: fold every event from the first, stopping where the target says. */
function replayFromStart(events: readonly LedgerEvent[], target: bigint | Date) {
  const view = emptyKeymetaView();
  for (const event of events) {
    if (
      typeof target === 'bigint'
        ? event.position > target
        : Date.parse(event.meta.occurredAt) > target.getTime()
    )
      break;
    evolveKeymeta(view, event);
  }
  return view;
}

/** A store that counts the events readAll hands out (to see that as-of starts from a snapshot). */
function countingStore(inner: EventStore): EventStore & { read: number } {
  const store = {
    read: 0,
    append: (stream, events, expected) => inner.append(stream, events, expected),
    readStream: (stream, options) => inner.readStream(stream, options),
    readAll: (options?: ReadAllOptions): AsyncIterable<RecordedEvent> => ({
      [Symbol.asyncIterator]: async function* () {
        for await (const event of inner.readAll(options)) {
          store.read++;
          yield event;
        }
      },
    }),
    subscribe: (options) => inner.subscribe(options),
    headPosition: () => inner.headPosition(),
    deleteStream: (stream) => inner.deleteStream(stream),
    loadSnapshot: (name) => inner.loadSnapshot(name),
    saveSnapshot: (name, snapshot) => inner.saveSnapshot(name, snapshot),
    saveSnapshotRows: (name, header, rows, base) => inner.saveSnapshotRows(name, header, rows, base),
    snapshotRowReadAlone: inner.snapshotRowReadAlone,
    loadSnapshotRow: (name, key) => inner.loadSnapshotRow(name, key),
    readSnapshotRows: (name) => inner.readSnapshotRows(name),
    close: () => inner.close(),
  } satisfies EventStore & { read: number };
  return store;
}

type Op =
  | {
      readonly op: 'enable' | 'rotate' | 'disableScope' | 'refresh' | 'reopen' | 'destroyDue';
      readonly scope: number;
    }
  | {
      readonly op: 'disableKey' | 'reenable' | 'set' | 'scheduleDestroy';
      readonly scope: number;
      readonly pick: number;
    };

const ops: fc.Arbitrary<{ readonly step: Op; readonly dt: number }[]> = fc.array(
  fc.record({
    step: fc.oneof(
      fc.record({
        op: fc.constantFrom('enable', 'rotate', 'disableScope', 'refresh', 'reopen', 'destroyDue'),
        scope: fc.nat(SCOPES.length - 1),
      }),
      fc.record({
        op: fc.constantFrom('disableKey', 'reenable', 'set', 'scheduleDestroy'),
        scope: fc.nat(SCOPES.length - 1),
        pick: fc.nat(5),
      }),
    ) as fc.Arbitrary<Op>,
    // Mostly forward, hours apart (so days change), sometimes a little back.
    dt: fc.oneof(fc.integer({ min: -5_000, max: 0 }), fc.integer({ min: 1, max: 6 * 3_600_000 })),
  }),
  { minLength: 5, maxLength: 40 },
);

interface World {
  readonly store: EventStore;
  readonly provider: ScriptedProvider;
  readonly clock: Clock;
  ledger: Ledger;
}

async function open(world: Omit<World, 'ledger'>, asOfEvery: number): Promise<Ledger> {
  return Ledger.open({
    store: world.store,
    provider: world.provider,
    actor: 'test',
    now: world.clock.now,
    snapshotEvery: 3,
    asOfEvery,
  });
}

/**
 * The series is written in the document form on the memory store and in the row form on sqlite
 * (EventStore.snapshotRowReadAlone, src/audit/asOfSnapshots.ts): tests that care run on both.
 */
const STORES: readonly (readonly [string, () => EventStore])[] = [
  ['memory (document form)', () => new MemoryEventStore()],
  ['sqlite (row form)', () => SqliteEventStore.open(join(dir, `asof-${++files}.db`))],
];
let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-asof-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function newWorld(asOfEvery = 2, store: EventStore = new MemoryEventStore()): Promise<World> {
  const base = { store, provider: new ScriptedProvider(), clock: new Clock() };
  const ledger = await open(base, asOfEvery);
  await ledger.initialise();
  return { ...base, ledger };
}

let keyCounter = 0;

/** Runs one step; a refusal by a rule is part of a random history (it writes nothing). */
async function run(world: World, step: Op, asOfEvery: number): Promise<void> {
  const scope = SCOPES[step.scope] as KeyScope;
  const { custodian, namespace } = scope;
  const admin = world.ledger.admin;
  const destruction = world.ledger.destruction;
  const keys = async () => admin.getManagedKeys(custodian, namespace);
  const picked = async (pick: number) => {
    const all = await keys();
    return all.length === 0 ? null : (all[pick % all.length] ?? null);
  };
  try {
    switch (step.op) {
      case 'enable':
        world.provider.setKey(scope, `k${++keyCounter}`);
        await admin.enableKeyManagement(custodian, namespace);
        return;
      case 'rotate':
        world.provider.setKey(scope, `k${++keyCounter}`);
        await admin.rotateManagedKey(custodian, namespace);
        return;
      case 'disableScope':
        await admin.disableKeyManagement(custodian, namespace);
        return;
      case 'refresh':
        await admin.refreshManagedKeys(custodian, namespace);
        return;
      case 'reopen':
        await world.ledger.close();
        world.ledger = await open(world, asOfEvery);
        return;
      case 'destroyDue':
        await destruction.destroyDueKeys();
        return;
      case 'disableKey': {
        const key = await picked(step.pick);
        if (key) await admin.disableManagedKey(custodian, namespace, key.metadataHash);
        return;
      }
      case 'reenable': {
        const key = await picked(step.pick);
        if (key) await admin.enableManagedKey(custodian, namespace, key.metadataHash);
        return;
      }
      case 'set': {
        const key = await picked(step.pick);
        if (key) await admin.setManagedKey(custodian, namespace, key.metadata);
        return;
      }
      case 'scheduleDestroy': {
        const key = await picked(step.pick);
        if (key)
          await destruction.scheduleKeyDestruction(custodian, namespace, key.metadataHash, { graceMs: 0 });
        return;
      }
      default: {
        const unreachable: never = step;
        return unreachable;
      }
    }
  } catch (error) {
    if (isKeyledgerError(error) && error.category !== 'fault') return;
    throw error;
  }
}

async function randomHistory(
  steps: readonly { step: Op; dt: number }[],
  asOfEvery = 2,
  store: EventStore = new MemoryEventStore(),
): Promise<World> {
  const world = await newWorld(asOfEvery, store);
  for (const { step, dt } of steps) {
    world.clock.ms += dt;
    await run(world, step, asOfEvery);
  }
  // Queries about any event's time must not be "in the future".
  world.clock.ms = START + 400 * 86_400_000;
  await world.ledger.close();
  world.ledger = await open(world, asOfEvery);
  return world;
}

/** Every position of the history, and every event time with a millisecond either side. */
function targets(events: readonly LedgerEvent[]): (bigint | Date)[] {
  const out: (bigint | Date)[] = events.map((e) => e.position);
  for (const e of events) {
    const t = Date.parse(e.meta.occurredAt);
    out.push(new Date(t - 1), new Date(t), new Date(t + 1));
  }
  return out.filter(
    (t) => typeof t === 'bigint' || t.getTime() >= Date.parse(events[0]?.meta.occurredAt ?? ''),
  );
}

describe('as-of queries', () => {
  for (const [storeName, makeStore, numRuns, atLeast] of [
    [...(STORES[0] as (typeof STORES)[number]), 25, { snapshots: 5, clockBack: 3 }],
    [...(STORES[1] as (typeof STORES)[number]), 8, { snapshots: 2, clockBack: 1 }],
  ] as const)
    it(`equal a replay of every event from the start, at every position and event time (random histories, ${storeName})`, async () => {
      let withSnapshots = 0;
      let withClockBack = 0;
      await fc.assert(
        fc.asyncProperty(ops, async (steps) => {
          const world = await randomHistory(steps, 2, makeStore());
          try {
            const events = await allEvents(world.store);
            if ((await loadAsOfIndex(world.store, 'kl-')).some((m) => m.snapshot)) withSnapshots++;
            if (events.some((e, i) => i > 0 && e.meta.occurredAt < (events[i - 1]?.meta.occurredAt ?? '')))
              withClockBack++;
            for (const target of targets(events)) {
              const expected = replayFromStart(events, target);
              const got = await world.ledger.asOf(target);
              assert.deepEqual(
                plainScopes(got.scopes),
                plainScopes(expected.scopes),
                `whole ledger as of ${String(target)}`,
              );
              if (typeof target !== 'bigint') assert.equal(got.position, expected.position);
              for (const scope of SCOPES) {
                if ((await world.store.readStream(world.ledger.streamNames.scope(scope))).length === 0)
                  continue;
                const one = await world.ledger.scopeAsOf(scope.custodian, scope.namespace, target);
                // scopeAsOf answers in getScopeStatus's shape: compare it with the expected fold's.
                const fold = scopeOf(expected, scope);
                assert.deepEqual(
                  { marker: one.marker, keys: one.keys },
                  { marker: fold.marker, keys: [...fold.keys.values()].map((k) => toKeyInfo(k, scope)) },
                  `scope as of ${String(target)}`,
                );
              }
            }
          } finally {
            await world.ledger.close();
            await world.store.close();
          }
        }),
        { numRuns },
      );
      // The property is only worth something if the histories used the series and had clocks go back.
      assert.ok(
        withSnapshots >= atLeast.snapshots,
        `runs that started from a historic snapshot: ${withSnapshots}`,
      );
      assert.ok(withClockBack >= atLeast.clockBack, `runs whose event times went back: ${withClockBack}`);
    });

  it('start from the nearest historic snapshot, not from the first event', async () => {
    const world = await newWorld(5);
    const scope = SCOPES[0] as KeyScope;
    for (let i = 0; i < 40; i++) {
      world.clock.ms += 60_000;
      world.provider.setKey(scope, `r${i}`);
      if (i === 0) await world.ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
      else await world.ledger.admin.rotateManagedKey(scope.custodian, scope.namespace);
    }
    await world.ledger.close();
    const marks = await loadAsOfIndex(world.store, 'kl-');
    assert.ok(marks.filter((m) => m.snapshot).length >= 2, 'the projector kept a series of snapshots');
    const head = await world.store.headPosition();
    const counting = countingStore(world.store);
    const ledger = await Ledger.open({
      store: counting,
      provider: world.provider,
      now: world.clock.now,
      asOfEvery: 0,
    });
    try {
      counting.read = 0;
      const got = await ledger.asOf(head);
      const latest = marks.filter((m) => m.snapshot).at(-1)?.position ?? 0n;
      // The first-event check reads one event; the replay reads only what came after the snapshot.
      assert.equal(counting.read, 1 + Number(head - latest));
      assert.ok(counting.read < Number(head), 'fewer events read than a replay from the start');
      assert.deepEqual(
        plainScopes(got.scopes),
        plainScopes(replayFromStart(await allEvents(world.store), head).scopes),
      );
    } finally {
      await ledger.close();
    }
  });

  it('a catch-up from the first event leaves a sealed series, with marks per interval, not per event', async () => {
    // The first ledger keeps no series; a second one, kept from the view snapshot, catches up from
    // the first event. Its seal keys exist during the catch-up, so it leaves historic snapshots.
    const world = await newWorld(0);
    const scope = SCOPES[0] as KeyScope;
    for (let i = 0; i < 40; i++) {
      world.clock.ms += 60_000;
      world.provider.setKey(scope, `c${i}`);
      if (i === 0) await world.ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
      else await world.ledger.admin.rotateManagedKey(scope.custodian, scope.namespace);
    }
    await world.ledger.close();
    assert.equal((await loadAsOfIndex(world.store, 'kl-')).length, 0);
    const head = await world.store.headPosition();
    const fresh = countingStore(world.store);
    fresh.loadSnapshot = (name) =>
      name === 'kl-keymeta' ? Promise.resolve(null) : world.store.loadSnapshot(name);
    const catchingUp = await Ledger.open({
      store: fresh,
      provider: world.provider,
      now: world.clock.now,
      asOfEvery: 5,
    });
    assert.equal(fresh.read, Number(head), 'the catch-up read every event');
    await catchingUp.close();
    const marks = await loadAsOfIndex(world.store, 'kl-');
    assert.ok(marks.filter((m) => m.snapshot).length >= 2, 'the catch-up left a series of snapshots');
    // Marks come at growing intervals (at least as many positions apart as there are marks).
    assert.ok(marks.length * marks.length <= 4 * Number(head), `${marks.length} marks for ${head} events`);
    const ledger = await Ledger.open({ store: world.store, provider: world.provider, now: world.clock.now });
    try {
      assert.deepEqual(
        plainScopes((await ledger.asOf(head)).scopes),
        plainScopes(replayFromStart(await allEvents(world.store), head).scopes),
      );
    } finally {
      await ledger.close();
    }
  });

  for (const [storeName, makeStore] of STORES)
    it(`historic snapshots hold no wrapped material, so they never keep what crypto-shredding deletes (${storeName})`, async () => {
      const store = makeStore();
      const rowForm = store.snapshotRowReadAlone;
      const world = await newWorld(2, store);
      const scope = SCOPES[0] as KeyScope;
      world.provider.setKey(scope, 'm1');
      await world.ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
      world.provider.setKey(scope, 'm2');
      await world.ledger.admin.rotateManagedKey(scope.custodian, scope.namespace);
      await world.ledger.close();
      const marks = (await loadAsOfIndex(world.store, 'kl-')).filter((m) => m.snapshot);
      assert.ok(marks.length > 0);
      const wrapped = (await allEvents(world.store)).flatMap((e) =>
        e.type === 'KeyMaterialWrapped' ? [e.data.wrapped] : [],
      );
      assert.ok(wrapped.length >= 2);
      for (const mark of marks) {
        const snapshot = await world.store.loadSnapshot(asOfSnapshotName('kl-', mark.position));
        assert.ok(snapshot !== null);
        // The sealed header (src/audit/snapshotSeal.ts) and the rows it stores (src/audit/asOfRows.ts),
        // or the sealed document (the whole view, no rows).
        let text = JSON.stringify(snapshot.state);
        assert.equal(
          (snapshot.state as { body: { asOfRows?: unknown } }).body.asOfRows !== undefined,
          rowForm,
        );
        let rows = 0;
        for await (const page of world.store.readSnapshotRows(asOfSnapshotName('kl-', mark.position))) {
          for (const row of page) text += row.value;
          rows += page.length;
        }
        if (rowForm) assert.ok(rows > 0, 'the first historic snapshot stores rows');
        else assert.equal(rows, 0);
        for (const w of wrapped) assert.ok(!text.includes(w), 'no wrapped material in a historic snapshot');
      }
      await store.close();
    });

  it('an index never names a historic snapshot whose save failed; queries still give the replayed answer', async () => {
    const base = { store: new MemoryEventStore(), provider: new ScriptedProvider(), clock: new Clock() };
    // Every historic snapshot save fails (the index and the projector's own snapshot are saved).
    const HISTORIC = asOfSnapshotName('kl-', 0n).slice(0, -1);
    const failing = new (class extends ForwardingEventStore {
      override async saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
        if (name.startsWith(HISTORIC) && name !== asOfIndexName('kl-')) throw new Error('disk full');
        return super.saveSnapshot(name, snapshot);
      }
      override async saveSnapshotRows(
        name: string,
        header: Snapshot,
        rows: Iterable<SnapshotRowChange>,
        base: bigint | null,
      ): Promise<boolean> {
        if (name.startsWith(HISTORIC)) throw new Error('disk full');
        return super.saveSnapshotRows(name, header, rows, base);
      }
    })(base.store);
    const world = { ...base, store: failing as EventStore };
    const openFailing = () =>
      Ledger.open({
        store: world.store,
        provider: world.provider,
        actor: 'test',
        now: world.clock.now,
        asOfEvery: 2,
      });
    const ledger = await openFailing();
    await ledger.initialise();
    const scope = SCOPES[0] as KeyScope;
    for (let i = 0; i < 6; i++) {
      world.provider.setKey(scope, `f${i}`);
      if (i === 0) await ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
      else await ledger.admin.rotateManagedKey(scope.custodian, scope.namespace);
    }
    await ledger.close();
    const marks = await loadAsOfIndex(base.store, 'kl-');
    assert.ok(marks.length > 0, 'marks were saved');
    assert.deepEqual(
      marks.filter((m) => m.snapshot),
      [],
      'no mark names a snapshot that was never saved',
    );
    const reopened = await openFailing();
    try {
      const head = await base.store.headPosition();
      assert.deepEqual(
        plainScopes((await reopened.asOf(head)).scopes),
        plainScopes(replayFromStart(await allEvents(base.store), head).scopes),
      );
    } finally {
      await reopened.close();
    }
  });

  it('skip a historic snapshot that no longer parses and still give the replayed answer', async () => {
    const world = await newWorld(2);
    const scope = SCOPES[0] as KeyScope;
    for (let i = 0; i < 6; i++) {
      world.clock.ms += 1000;
      world.provider.setKey(scope, `s${i}`);
      if (i === 0) await world.ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
      else await world.ledger.admin.rotateManagedKey(scope.custodian, scope.namespace);
    }
    await world.ledger.close();
    const snapshots = (await loadAsOfIndex(world.store, 'kl-')).filter((m) => m.snapshot);
    const last = snapshots.at(-1);
    assert.ok(last !== undefined);
    await world.store.saveSnapshot(asOfSnapshotName('kl-', last.position), {
      position: last.position,
      state: { version: 0 },
    });
    world.ledger = await open(world, 0);
    const head = await world.store.headPosition();
    const got = await world.ledger.asOf(head);
    assert.deepEqual(
      plainScopes(got.scopes),
      plainScopes(replayFromStart(await allEvents(world.store), head).scopes),
    );
    // An index that does not parse counts as none: queries replay from the start.
    await world.store.saveSnapshot(asOfIndexName('kl-'), { position: 1n, state: 'garbage' });
    assert.deepEqual(plainScopes((await world.ledger.asOf(head)).scopes), plainScopes(got.scopes));
    await world.ledger.close();
  });

  it('two processes on one store merge their marks into one index', async () => {
    const world = await newWorld(2);
    const other = await open(world, 2);
    const scope = SCOPES[0] as KeyScope;
    world.provider.setKey(scope, 'p1');
    await world.ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
    for (let i = 2; i < 8; i++) {
      world.provider.setKey(scope, `p${i}`);
      await (i % 2 === 0 ? other : world.ledger).admin.rotateManagedKey(scope.custodian, scope.namespace);
    }
    await other.waitForPosition(await world.store.headPosition());
    await world.ledger.close();
    await other.close();
    const marks = await loadAsOfIndex(world.store, 'kl-');
    const positions = marks.map((m) => m.position);
    assert.deepEqual(
      positions,
      [...new Set(positions)].sort((a, b) => (a < b ? -1 : 1)),
      'sorted, no repeats',
    );
    for (const mark of marks.filter((m) => m.snapshot)) {
      assert.notEqual(await world.store.loadSnapshot(asOfSnapshotName('kl-', mark.position)), null);
    }
  });
});

describe('as-of errors', () => {
  async function rejectsWith(world: World, call: () => Promise<unknown>, code: string) {
    const before = await world.store.headPosition();
    await assert.rejects(call, (error: { code?: string }) => {
      assert.equal(error.code, code);
      return true;
    });
    assert.equal(await world.store.headPosition(), before, 'nothing may be written');
  }

  it('refuses a target in the future, before the ledger existed, malformed, or an unknown scope', async () => {
    const world = await newWorld();
    const scope = SCOPES[0] as KeyScope;
    world.clock.ms += 1000;
    world.provider.setKey(scope, 'e1');
    await world.ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
    const head = await world.store.headPosition();
    const { custodian, namespace } = scope;
    const l = world.ledger;
    await rejectsWith(world, () => l.asOf(head + 1n), 'ERR_AS_OF_IN_FUTURE');
    await rejectsWith(world, () => l.asOf(new Date(world.clock.ms + 1)), 'ERR_AS_OF_IN_FUTURE');
    await rejectsWith(world, () => l.scopeAsOf(custodian, namespace, head + 1n), 'ERR_AS_OF_IN_FUTURE');
    await rejectsWith(world, () => l.asOf(0n), 'ERR_AS_OF_BEFORE_LEDGER');
    await rejectsWith(world, () => l.asOf(new Date(START - 1)), 'ERR_AS_OF_BEFORE_LEDGER');
    await rejectsWith(
      world,
      () => l.scopeAsOf(custodian, namespace, new Date(START - 1)),
      'ERR_AS_OF_BEFORE_LEDGER',
    );
    await rejectsWith(world, () => l.asOf(-1n), 'ERR_INVALID_AS_OF');
    await rejectsWith(world, () => l.asOf(new Date(Number.NaN)), 'ERR_INVALID_AS_OF');
    await rejectsWith(world, () => l.asOf('2026-01-01' as never), 'ERR_INVALID_AS_OF');
    await rejectsWith(
      world,
      () => l.scopeAsOf(Buffer.from('nobody').toString('base64'), 'x', head),
      'ERR_SCOPE_NOT_FOUND',
    );
    await rejectsWith(world, () => l.scopeAsOf('not base64!', 'x', head), 'ERR_INVALID_CUSTODIAN');
    await l.close();
  });

  it('an empty ledger has no moment to ask about', async () => {
    const store = new MemoryEventStore();
    const ledger = await Ledger.open({ store, provider: new ScriptedProvider() });
    await assert.rejects(ledger.asOf(new Date()), { code: 'ERR_AS_OF_BEFORE_LEDGER' });
    await assert.rejects(ledger.asOf(0n), { code: 'ERR_AS_OF_BEFORE_LEDGER' });
    await ledger.close();
  });

  it('a scope that came later answers as empty at an earlier moment', async () => {
    const world = await newWorld();
    const [first, later] = SCOPES as [KeyScope, KeyScope];
    world.provider.setKey(first, 'a1');
    await world.ledger.admin.enableKeyManagement(first.custodian, first.namespace);
    const before = await world.store.headPosition();
    world.provider.setKey(later, 'b1');
    await world.ledger.admin.enableKeyManagement(later.custodian, later.namespace);
    const r = await world.ledger.scopeAsOf(later.custodian, later.namespace, before);
    assert.equal(r.marker, null);
    assert.equal(r.keys.length, 0);
    assert.equal(r.position, before.toString());
    await world.ledger.close();
  });

  it('parseAsOf: digits are a position, a zoned ISO date-time a time, anything else ERR_INVALID_AS_OF', () => {
    assert.equal(parseAsOf('42'), 42n);
    assert.equal((parseAsOf('2026-11-24T09:14:00Z') as Date).toISOString(), '2026-11-24T09:14:00.000Z');
    assert.equal((parseAsOf('2026-11-24T09:14:00+02:00') as Date).toISOString(), '2026-11-24T07:14:00.000Z');
    for (const bad of [
      '',
      'yesterday',
      '2026-11-24',
      '2026-11-24T09:14:00',
      '-3',
      '1e5',
      '2026-13-01T00:00:00Z',
    ]) {
      assert.throws(
        () => parseAsOf(bad),
        (e: { code?: string }) => e.code === 'ERR_INVALID_AS_OF',
        bad,
      );
    }
  });
});
