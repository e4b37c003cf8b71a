import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom, type Observable, take, timeout, toArray } from 'rxjs';
import type {
  EventStore,
  EventToAppend,
  ExpectedRevision,
  JsonObject,
  RecordedEvent,
} from '../../src/store/eventStore.js';

export type StoreFactory = () => Promise<{ store: EventStore; cleanup(): Promise<void> }>;

export interface ContractOptions {
  /**
   * False when the factory cannot give an empty store: a real EventStoreDB server shared by every
   * test (ESDB_CONNECTION_STRING). Only the "empty store" assertion depends on it. Default true.
   */
  readonly freshStores?: boolean;
}

/** Long enough for any adapter to deliver a live event (sqlite polls every 20 ms by default). */
const DELIVERY_TIMEOUT_MS = 5000;
/** How long to watch for an event that must not come. */
const QUIET_MS = 150;

function uid(): string {
  return randomUUID().slice(0, 8);
}

function event(type = 'Tested', data: JsonObject = {}, metadata: JsonObject = {}): EventToAppend {
  return { eventId: randomUUID(), type, data, metadata };
}

function events(count: number, type = 'Tested'): EventToAppend[] {
  return Array.from({ length: count }, (_, i) => event(type, { i }));
}

async function collect(iterable: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> {
  const found: RecordedEvent[] = [];
  for await (const recorded of iterable) found.push(recorded);
  return found;
}

/** The first `count` events of an observable, failing if they take too long. */
function first(observable: Observable<RecordedEvent>, count: number): Promise<RecordedEvent[]> {
  return firstValueFrom(observable.pipe(take(count), toArray(), timeout(DELIVERY_TIMEOUT_MS)));
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal((error as { code?: unknown }).code, code);
    return true;
  });
}

function assertIncreasingPositions(found: readonly RecordedEvent[]): void {
  for (let i = 0; i < found.length; i++) {
    const current = found[i];
    const previous = found[i - 1];
    assert.ok(current !== undefined && current.position > 0n, 'positions are > 0');
    if (previous !== undefined && current !== undefined) {
      assert.ok(
        current.position > previous.position,
        `position ${current.position} after ${previous.position}`,
      );
    }
  }
}

function ids(found: readonly RecordedEvent[]): string[] {
  return found.map((recorded) => recorded.eventId);
}

function eventIds(batch: readonly EventToAppend[]): string[] {
  return batch.map((e) => e.eventId);
}

/**
 * The EventStore contract: every adapter passes it (see src/store/eventStore.ts). One store is
 * shared by most tests, so each test writes to stream names of its own and reads by prefix; tests
 * that need an empty or closed store make their own with the factory.
 */
export function testEventStore(name: string, factory: StoreFactory, options: ContractOptions = {}): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;

    before(async () => {
      ({ store, cleanup } = await factory());
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    describe('append and expected revisions', () => {
      it('any: creates a stream and appends to an existing one', async () => {
        const stream = `any-${uid()}`;
        const created = await store.append(stream, [event()], 'any');
        assert.equal(created.nextExpectedRevision, 0n);
        assert.ok(created.position > 0n);
        const next = await store.append(stream, events(2), 'any');
        assert.equal(next.nextExpectedRevision, 2n);
        assert.ok(next.position > created.position);
        const read = await store.readStream(stream);
        assert.deepEqual(
          read.map((recorded) => recorded.revision),
          [0n, 1n, 2n],
        );
        assert.equal(read[2]?.position, next.position);
      });

      it('no_stream: succeeds on an absent stream, conflicts on an existing one without writing', async () => {
        const stream = `nostream-${uid()}`;
        const result = await store.append(stream, events(2), 'no_stream');
        assert.equal(result.nextExpectedRevision, 1n);
        const head = await store.headPosition();
        await rejectsWith(store.append(stream, [event()], 'no_stream'), 'ERR_VERSION_CONFLICT');
        assert.equal((await store.readStream(stream)).length, 2);
        assert.equal(await store.headPosition(), head);
      });

      it('stream_exists: conflicts on an absent stream without creating it, succeeds on an existing one', async () => {
        const stream = `exists-${uid()}`;
        await rejectsWith(store.append(stream, [event()], 'stream_exists'), 'ERR_VERSION_CONFLICT');
        assert.deepEqual(await store.readStream(stream), []);
        // The failed append must not have created the stream either.
        await store.append(stream, [event()], 'no_stream');
        const result = await store.append(stream, [event()], 'stream_exists');
        assert.equal(result.nextExpectedRevision, 1n);
      });

      it('exact revision: succeeds when it is the last revision, conflicts when stale, ahead or absent', async () => {
        const stream = `exact-${uid()}`;
        await rejectsWith(store.append(stream, [event()], 0n), 'ERR_VERSION_CONFLICT');
        assert.deepEqual(await store.readStream(stream), []);
        await store.append(stream, events(2), 'no_stream');
        const result = await store.append(stream, [event()], 1n);
        assert.equal(result.nextExpectedRevision, 2n);
        for (const wrong of [0n, 1n, 3n, 10n]) {
          await rejectsWith(store.append(stream, [event()], wrong), 'ERR_VERSION_CONFLICT');
        }
        const read = await store.readStream(stream);
        assert.equal(read.length, 3);
        assert.equal((await store.append(stream, [event()], 2n)).nextExpectedRevision, 3n);
      });

      it('a conflict writes none of the batch, anywhere', async () => {
        const prefix = `conflict-${uid()}`;
        const stream = `${prefix}-s`;
        await store.append(stream, [event()], 'no_stream');
        await rejectsWith(store.append(stream, events(5), 7n), 'ERR_VERSION_CONFLICT');
        assert.equal((await collect(store.readAll({ streamPrefix: prefix }))).length, 1);
      });

      it('a multi-event append is atomic: consecutive revisions, increasing positions, read together', async () => {
        const stream = `atomic-${uid()}`;
        const batch = events(10);
        const result = await store.append(stream, batch, 'no_stream');
        assert.equal(result.nextExpectedRevision, 9n);
        const read = await store.readStream(stream);
        assert.deepEqual(ids(read), eventIds(batch));
        assert.deepEqual(
          read.map((recorded) => recorded.revision),
          Array.from({ length: 10 }, (_, i) => BigInt(i)),
        );
        assertIncreasingPositions(read);
        assert.equal(read[9]?.position, result.position);
      });

      it('an append that cannot be stored writes none of its events', async () => {
        const stream = `unstorable-${uid()}`;
        const bad = {
          eventId: randomUUID(),
          type: 'Bad',
          data: { n: 1n },
          metadata: {},
        } as unknown as EventToAppend;
        await rejectsWith(store.append(stream, [event(), bad, event()], 'any'), 'ERR_INVALID_ARGUMENT');
        assert.deepEqual(await store.readStream(stream), []);
        assert.equal((await store.append(stream, [event()], 'no_stream')).nextExpectedRevision, 0n);
      });

      it('rejects an empty batch and a batch repeating an event id', async () => {
        const stream = `invalid-${uid()}`;
        await rejectsWith(store.append(stream, [], 'any'), 'ERR_INVALID_ARGUMENT');
        const repeated = event();
        await rejectsWith(store.append(stream, [repeated, event(), repeated], 'any'), 'ERR_INVALID_ARGUMENT');
        assert.deepEqual(await store.readStream(stream), []);
      });
    });

    describe('idempotent re-append', () => {
      it('the same batch again returns the original result and writes nothing, whatever the expected revision', async () => {
        const stream = `idem-${uid()}`;
        const batch = events(3);
        const original = await store.append(stream, batch, 'no_stream');
        const head = await store.headPosition();
        const forms: ExpectedRevision[] = ['no_stream', 'any', 'stream_exists', 0n, 2n, 99n];
        for (const expected of forms) {
          assert.deepEqual(
            await store.append(stream, batch, expected),
            original,
            `expected ${String(expected)}`,
          );
        }
        assert.deepEqual(ids(await store.readStream(stream)), eventIds(batch));
        assert.equal(await store.headPosition(), head);
      });

      it('a retried single event returns its original result', async () => {
        const stream = `idem1-${uid()}`;
        await store.append(stream, [event()], 'no_stream');
        const retried = event();
        const original = await store.append(stream, [retried], 0n);
        assert.deepEqual(await store.append(stream, [retried], 0n), original);
        assert.equal((await store.readStream(stream)).length, 2);
      });

      it('a batch that grew since its first attempt (some ids written, some new) conflicts and writes nothing', async () => {
        const stream = `overlap-${uid()}`;
        const batch = events(2);
        const original = await store.append(stream, batch, 'no_stream');
        const grown = [...batch, event()];
        await rejectsWith(store.append(stream, grown, 'any'), 'ERR_VERSION_CONFLICT');
        await rejectsWith(store.append(stream, grown, original.nextExpectedRevision), 'ERR_VERSION_CONFLICT');
        await rejectsWith(store.append(stream, grown, 'no_stream'), 'ERR_VERSION_CONFLICT');
        assert.deepEqual(ids(await store.readStream(stream)), eventIds(batch));
      });
    });

    describe('readStream', () => {
      it('reads in revision order, from a revision', async () => {
        const stream = `read-${uid()}`;
        const batch = events(5);
        await store.append(stream, batch.slice(0, 2), 'no_stream');
        await store.append(`read-other-${uid()}`, [event()], 'no_stream');
        await store.append(stream, batch.slice(2), 1n);
        const all = await store.readStream(stream);
        assert.deepEqual(ids(all), eventIds(batch));
        assertIncreasingPositions(all);
        for (const recorded of all) {
          assert.equal(recorded.streamName, stream);
          assert.equal(recorded.type, 'Tested');
          assert.ok(recorded.recordedAt instanceof Date);
          assert.ok(Math.abs(recorded.recordedAt.getTime() - Date.now()) < 60_000);
        }
        const fromTwo = await store.readStream(stream, { fromRevision: 2n });
        assert.deepEqual(
          fromTwo.map((recorded) => recorded.revision),
          [2n, 3n, 4n],
        );
        assert.deepEqual(await store.readStream(stream, { fromRevision: 5n }), []);
      });

      it('an absent stream reads as empty', async () => {
        assert.deepEqual(await store.readStream(`absent-${uid()}`), []);
      });
    });

    describe('readAll', () => {
      it('reads every stream in position order', async () => {
        const prefix = `all-${uid()}`;
        const written: string[] = [];
        for (let i = 0; i < 12; i++) {
          const batch = events(1 + (i % 3));
          await store.append(`${prefix}-${i % 4}`, batch, 'any');
          written.push(...eventIds(batch));
        }
        const found = await collect(store.readAll({ streamPrefix: prefix }));
        assert.deepEqual(ids(found), written);
        assertIncreasingPositions(found);

        const everything = await collect(store.readAll());
        assertIncreasingPositions(everything);
        const ours = new Set(written);
        assert.deepEqual(
          ids(everything).filter((id) => ours.has(id)),
          written,
        );
      });

      it('after is exclusive, maxCount stops early, streamPrefix filters', async () => {
        const prefix = `allopt-${uid()}`;
        for (let i = 0; i < 6; i++) {
          await store.append(`${prefix}-a`, [event()], 'any');
          await store.append(`${prefix}-b`, [event()], 'any');
          await store.append(`other-${prefix}-a`, [event()], 'any');
        }
        const all = await collect(store.readAll({ streamPrefix: prefix }));
        assert.equal(all.length, 12);
        assert.ok(all.every((recorded) => recorded.streamName.startsWith(prefix)));
        const onlyA = await collect(store.readAll({ streamPrefix: `${prefix}-a` }));
        assert.deepEqual(ids(onlyA), ids(all.filter((recorded) => recorded.streamName === `${prefix}-a`)));

        const pivot = all[4];
        assert.ok(pivot !== undefined);
        const afterPivot = await collect(store.readAll({ streamPrefix: prefix, after: pivot.position }));
        assert.deepEqual(ids(afterPivot), ids(all.slice(5)));

        const firstThree = await collect(store.readAll({ streamPrefix: prefix, maxCount: 3 }));
        assert.deepEqual(ids(firstThree), ids(all.slice(0, 3)));
        const pageAfter = await collect(
          store.readAll({ streamPrefix: prefix, after: pivot.position, maxCount: 2 }),
        );
        assert.deepEqual(ids(pageAfter), ids(all.slice(5, 7)));
        assert.deepEqual(await collect(store.readAll({ streamPrefix: prefix, maxCount: 0 })), []);
        const last = all[all.length - 1];
        assert.ok(last !== undefined);
        assert.deepEqual(await collect(store.readAll({ streamPrefix: prefix, after: last.position })), []);
      });

      it('reads across pages', async () => {
        const prefix = `allpages-${uid()}`;
        const count = 2500;
        for (let i = 0; i < count; i += 100) {
          await store.append(`${prefix}-${i % 7}`, events(100), 'any');
        }
        const found = await collect(store.readAll({ streamPrefix: prefix }));
        assert.equal(found.length, count);
        assert.equal(new Set(ids(found)).size, count);
        assertIncreasingPositions(found);
        const capped = await collect(store.readAll({ streamPrefix: prefix, maxCount: 1500 }));
        assert.deepEqual(ids(capped), ids(found.slice(0, 1500)));
      });

      it('matches stream prefixes beyond ASCII', async () => {
        const prefix = `ключ-🔑-${uid()}`;
        await store.append(`${prefix}é`, [event()], 'any');
        await store.append(`${prefix}e\u0301`, [event()], 'any');
        assert.equal((await collect(store.readAll({ streamPrefix: prefix }))).length, 2);
        assert.equal((await collect(store.readAll({ streamPrefix: `${prefix}é` }))).length, 1);
      });
    });

    describe('positions and headPosition', () => {
      it('headPosition is 0n on an empty store and follows appends', async () => {
        const own = await factory();
        try {
          if (options.freshStores !== false) assert.equal(await own.store.headPosition(), 0n);
          const first = await own.store.append(`head-${uid()}`, events(2), 'any');
          assert.equal(await own.store.headPosition(), first.position);
          const second = await own.store.append(`head-${uid()}`, [event()], 'any');
          assert.ok(second.position > first.position);
          assert.equal(await own.store.headPosition(), second.position);
        } finally {
          await own.store.close();
          await own.cleanup();
        }
      });

      it('headPosition is the position of the last event written', async () => {
        const result = await store.append(`head-shared-${uid()}`, events(3), 'any');
        assert.equal(await store.headPosition(), result.position);
      });
    });

    describe('subscribe', () => {
      it('catches up, then delivers live events', async () => {
        const prefix = `sub-${uid()}`;
        const before = events(3);
        await store.append(`${prefix}-1`, before, 'no_stream');
        const received = first(store.subscribe({ streamPrefix: prefix }), 6);
        await sleep(20);
        const live = events(2);
        await store.append(`${prefix}-1`, live, 2n);
        const later = event();
        await store.append(`${prefix}-2`, [later], 'no_stream');
        const found = await received;
        assert.deepEqual(
          ids(found),
          [...before, ...live, later].map((e) => e.eventId),
        );
        assertIncreasingPositions(found);
      });

      it('after is exclusive', async () => {
        const prefix = `subafter-${uid()}`;
        const batch = events(4);
        await store.append(`${prefix}-s`, batch, 'no_stream');
        const written = await store.readStream(`${prefix}-s`);
        const pivot = written[1];
        assert.ok(pivot !== undefined);
        const found = await first(store.subscribe({ streamPrefix: prefix, after: pivot.position }), 2);
        assert.deepEqual(ids(found), ids(written.slice(2)));
      });

      it('after the head delivers only what comes next', async () => {
        const prefix = `subhead-${uid()}`;
        await store.append(`${prefix}-s`, events(2), 'no_stream');
        const head = await store.headPosition();
        const received = first(store.subscribe({ streamPrefix: prefix, after: head }), 1);
        await sleep(20);
        const next = event();
        await store.append(`${prefix}-s`, [next], 1n);
        assert.deepEqual(ids(await received), [next.eventId]);
      });

      it('filters by stream prefix', async () => {
        const prefix = `subprefix-${uid()}`;
        const wanted: string[] = [];
        const received = first(store.subscribe({ streamPrefix: `${prefix}-a` }), 6);
        for (let i = 0; i < 6; i++) {
          const mine = event();
          wanted.push(mine.eventId);
          await store.append(`${prefix}-a${i % 2}`, [mine], 'any');
          await store.append(`${prefix}-b`, [event()], 'any');
          await store.append(`x-${prefix}-a`, [event()], 'any');
        }
        assert.deepEqual(ids(await received), wanted);
      });

      it('neither loses nor repeats events appended while subscriptions start', async () => {
        const prefix = `subrace-${uid()}`;
        const total = 200;
        const startAt = [0, 1, 37, 100, 150, 199, total];
        const received: RecordedEvent[][] = [];
        const failures: unknown[] = [];
        const subscriptions = [];
        const written: string[] = [];
        const appends: Promise<unknown>[] = [];
        try {
          for (let i = 0; i <= total; i++) {
            if (startAt.includes(i)) {
              const found: RecordedEvent[] = [];
              received.push(found);
              subscriptions.push(
                store.subscribe({ streamPrefix: prefix }).subscribe({
                  next: (recorded) => found.push(recorded),
                  error: (error: unknown) => failures.push(error),
                }),
              );
            }
            if (i === total) break;
            const next = event('Raced', { i });
            written.push(next.eventId);
            const appended = store.append(`${prefix}-${i % 5}`, [next], 'any');
            appends.push(appended);
            // Vary the interleaving: sometimes wait for the append, sometimes for a turn of the loop.
            if (i % 3 === 0) await appended;
            else if (i % 3 === 1) await new Promise((done) => setImmediate(done));
            else await appended.then(() => sleep(0));
          }
          await Promise.all(appends);
          for (const found of received) {
            await waitFor(() => found.length >= total || failures.length > 0, `${total} events`);
          }
          assert.deepEqual(failures, []);
          await sleep(QUIET_MS);
          for (const found of received) {
            assert.equal(found.length, total, 'no event delivered twice');
            assert.deepEqual(ids(found), written);
            assertIncreasingPositions(found);
          }
        } finally {
          for (const subscription of subscriptions) subscription.unsubscribe();
        }
      });

      it('catches up across pages while events keep coming', async () => {
        const prefix = `subpages-${uid()}`;
        const written: string[] = [];
        for (let i = 0; i < 25; i++) {
          const batch = events(100);
          await store.append(`${prefix}-${i % 3}`, batch, 'any');
          await store.append(`other-${prefix}`, events(20), 'any');
          written.push(...eventIds(batch));
        }
        const found: RecordedEvent[] = [];
        const subscription = store
          .subscribe({ streamPrefix: prefix })
          .subscribe((recorded) => found.push(recorded));
        try {
          for (let i = 0; i < 30; i++) {
            const batch = events(10);
            await store.append(`${prefix}-live`, batch, 'any');
            written.push(...eventIds(batch));
            if (i % 4 === 0) await new Promise((done) => setImmediate(done));
          }
          await waitFor(() => found.length >= written.length, `${written.length} events`);
          await sleep(QUIET_MS);
          assert.equal(found.length, written.length);
          assert.deepEqual(ids(found), written);
        } finally {
          subscription.unsubscribe();
        }
      });

      it("delivers events appended from a subscriber's own handler", async () => {
        const prefix = `subecho-${uid()}`;
        const found: RecordedEvent[] = [];
        const echoes: Promise<unknown>[] = [];
        const subscription = store.subscribe({ streamPrefix: prefix }).subscribe((recorded) => {
          found.push(recorded);
          if (recorded.type === 'Ping') {
            echoes.push(store.append(`${prefix}-pong`, [event('Pong', { to: recorded.eventId })], 'any'));
          }
        });
        try {
          for (let i = 0; i < 3; i++) await store.append(`${prefix}-ping`, [event('Ping')], 'any');
          await waitFor(() => found.length >= 6, 'pings and pongs');
          await Promise.all(echoes);
          await sleep(QUIET_MS);
          assert.equal(found.length, 6);
          assert.deepEqual(found.map((recorded) => recorded.type).sort(), [
            'Ping',
            'Ping',
            'Ping',
            'Pong',
            'Pong',
            'Pong',
          ]);
          assertIncreasingPositions(found);
        } finally {
          subscription.unsubscribe();
        }
      });

      it('unsubscribing stops delivery', async () => {
        const prefix = `subunsub-${uid()}`;
        const found: RecordedEvent[] = [];
        const subscription = store
          .subscribe({ streamPrefix: prefix })
          .subscribe((recorded) => found.push(recorded));
        await store.append(`${prefix}-s`, [event()], 'no_stream');
        await waitFor(() => found.length === 1, 'the first event');
        subscription.unsubscribe();
        await store.append(`${prefix}-s`, events(3), 0n);
        await sleep(QUIET_MS);
        assert.equal(found.length, 1);
      });

      it('two subscriptions to one observable are independent', async () => {
        const prefix = `subtwice-${uid()}`;
        await store.append(`${prefix}-s`, events(2), 'no_stream');
        const observable = store.subscribe({ streamPrefix: prefix });
        const [one, two] = await Promise.all([first(observable, 2), first(observable, 2)]);
        assert.deepEqual(ids(one), ids(two));
      });
    });

    describe('deleteStream', () => {
      it('reads as empty afterwards, and revisions continue when the stream is written again', async () => {
        const stream = `del-${uid()}`;
        await store.append(stream, events(3), 'no_stream');
        await store.deleteStream(stream);
        assert.deepEqual(await store.readStream(stream), []);
        await rejectsWith(store.append(stream, [event()], 'stream_exists'), 'ERR_VERSION_CONFLICT');
        await rejectsWith(store.append(stream, [event()], 2n), 'ERR_VERSION_CONFLICT');
        const again = await store.append(stream, events(2), 'no_stream');
        assert.equal(again.nextExpectedRevision, 4n);
        const read = await store.readStream(stream);
        assert.deepEqual(
          read.map((recorded) => recorded.revision),
          [3n, 4n],
        );
        await rejectsWith(store.append(stream, [event()], 'no_stream'), 'ERR_VERSION_CONFLICT');
        assert.equal((await store.append(stream, [event()], 4n)).nextExpectedRevision, 5n);
      });

      it('leaves other streams alone; deleting an absent or deleted stream is a no-op', async () => {
        const prefix = `del2-${uid()}`;
        await store.append(`${prefix}-a`, events(2), 'no_stream');
        await store.append(`${prefix}-b`, events(2), 'no_stream');
        await store.deleteStream(`${prefix}-a`);
        await store.deleteStream(`${prefix}-a`);
        await store.deleteStream(`${prefix}-never`);
        assert.equal((await store.readStream(`${prefix}-b`)).length, 2);
        assert.equal((await store.append(`${prefix}-b`, [event()], 1n)).nextExpectedRevision, 2n);
        assert.equal((await store.append(`${prefix}-a`, [event()], 'any')).nextExpectedRevision, 2n);
      });
    });

    describe('snapshots', () => {
      it('loads null when absent, then what was saved; saving again overwrites', async () => {
        const name = `snap-${uid()}`;
        assert.equal(await store.loadSnapshot(name), null);
        const state = { keys: [{ id: 'k1', active: true }], count: 1, note: 'ключ 🔑', empty: null };
        await store.saveSnapshot(name, { position: 42n, state });
        assert.deepEqual(await store.loadSnapshot(name), { position: 42n, state });
        await store.saveSnapshot(name, { position: 43n, state: ['replaced'] });
        assert.deepEqual(await store.loadSnapshot(name), { position: 43n, state: ['replaced'] });
        await store.saveSnapshot(name, { position: 2n ** 62n + 1n, state: null });
        assert.deepEqual(await store.loadSnapshot(name), { position: 2n ** 62n + 1n, state: null });
        assert.equal(await store.loadSnapshot(`${name}-other`), null);
      });

      it('never replaces a snapshot with an older one; an equal position replaces', async () => {
        const name = `snap-order-${uid()}`;
        await store.saveSnapshot(name, { position: 100n, state: 'newer' });
        await store.saveSnapshot(name, { position: 99n, state: 'lagging' });
        assert.deepEqual(await store.loadSnapshot(name), { position: 100n, state: 'newer' });
        await store.saveSnapshot(name, { position: 100n, state: 'same position' });
        assert.deepEqual(await store.loadSnapshot(name), { position: 100n, state: 'same position' });
        // Racing savers: whatever the interleaving, the highest position stays.
        await Promise.all(
          [101n, 105n, 103n, 102n, 104n].map((p) =>
            store.saveSnapshot(name, { position: p, state: p.toString() }),
          ),
        );
        assert.deepEqual(await store.loadSnapshot(name), { position: 105n, state: '105' });
      });

      it('are not events: saving one moves neither headPosition nor readAll nor a subscription', async () => {
        const prefix = `snapev-${uid()}`;
        const written = await store.append(`${prefix}-s`, [event()], 'no_stream');
        const head = await store.headPosition();
        const found: RecordedEvent[] = [];
        const subscription = store.subscribe({ after: head }).subscribe((recorded) => found.push(recorded));
        try {
          // Named like the ledger names its snapshots: with the prefix of the streams it reads.
          await store.saveSnapshot(`${prefix}-keymeta`, { position: written.position, state: { n: 1 } });
          assert.equal(await store.headPosition(), head);
          assert.deepEqual(
            (await collect(store.readAll({ streamPrefix: prefix }))).map((recorded) => recorded.streamName),
            [`${prefix}-s`],
          );
          // Whatever an adapter calls the snapshot's storage, it would carry the snapshot's name.
          const mine = (recorded: RecordedEvent) => recorded.streamName.includes(prefix);
          assert.deepEqual((await collect(store.readAll({ after: head }))).filter(mine), []);
          await sleep(QUIET_MS);
          assert.deepEqual(found.filter(mine), []);
        } finally {
          subscription.unsubscribe();
        }
      });
    });

    describe('row snapshots', () => {
      const rowsOf = async (name: string) => {
        const found = new Map<string, string>();
        for await (const page of store.readSnapshotRows(name))
          for (const r of page) found.set(r.key, r.value);
        return found;
      };

      it('save header and rows together; one row reads alone; a save on the stored base changes only its rows', async () => {
        const name = `rows-${uid()}`;
        assert.equal(await store.loadSnapshotRow(name, 'a'), null);
        assert.deepEqual(await rowsOf(name), new Map());
        const many = Array.from({ length: 5000 }, (_, i) => ({ key: `k${i}`, value: `v${i} ключ` }));
        assert.equal(
          await store.saveSnapshotRows(name, { position: 10n, state: { n: 5000 } }, many, null),
          true,
        );
        assert.deepEqual(await store.loadSnapshot(name), { position: 10n, state: { n: 5000 } });
        assert.equal(await store.loadSnapshotRow(name, 'k4321'), 'v4321 ключ');
        assert.equal((await rowsOf(name)).size, 5000);

        const changes = [
          { key: 'k1', value: 'changed' },
          { key: 'k2', value: null },
          { key: 'new', value: 'added' },
        ];
        assert.equal(
          await store.saveSnapshotRows(name, { position: 12n, state: { n: 5000 } }, changes, 10n),
          true,
        );
        const after = await rowsOf(name);
        assert.equal(after.size, 5000);
        assert.deepEqual(
          [after.get('k1'), after.get('k2'), after.get('new'), after.get('k3')],
          ['changed', undefined, 'added', 'v3 ключ'],
        );
        assert.equal((await store.loadSnapshot(name))?.position, 12n);
        // Another snapshot's rows are its own.
        assert.equal(await store.loadSnapshotRow(`${name}-other`, 'k3'), null);
      });

      it('snapshotRowReadAlone says how the rows are kept: one document per snapshot, or not', async () => {
        // What is observable through the port: a store that reads a row with its whole snapshot
        // keeps the rows as the document `<name>.rows` (documentSnapshotRows.ts), which loadSnapshot
        // sees; a store that reads one row alone keeps no such document. (The cost itself is not
        // asserted: timing one row against many would make the suite slow and flaky.)
        const name = `rows-alone-${uid()}`;
        const rows = [
          { key: 'a', value: '1' },
          { key: 'b', value: '2' },
        ];
        assert.equal(await store.saveSnapshotRows(name, { position: 5n, state: null }, rows, null), true);
        assert.equal(typeof store.snapshotRowReadAlone, 'boolean');
        const document = await store.loadSnapshot(`${name}.rows`);
        if (store.snapshotRowReadAlone) assert.equal(document, null);
        else assert.deepEqual(document?.state, { rows: { a: '1', b: '2' } });
      });

      it('write nothing on a stale base or over a newer header; a full save replaces every row', async () => {
        const name = `rows-cas-${uid()}`;
        await store.saveSnapshotRows(
          name,
          { position: 20n, state: 'first' },
          [{ key: 'a', value: '1' }],
          null,
        );
        // Its base is not the stored header's position: another writer saved in between.
        assert.equal(
          await store.saveSnapshotRows(
            name,
            { position: 30n, state: 'stale' },
            [{ key: 'b', value: '2' }],
            19n,
          ),
          false,
        );
        assert.equal(
          await store.saveSnapshotRows(
            name,
            { position: 19n, state: 'older' },
            [{ key: 'c', value: '3' }],
            null,
          ),
          false,
        );
        assert.deepEqual(await store.loadSnapshot(name), { position: 20n, state: 'first' });
        assert.deepEqual(await rowsOf(name), new Map([['a', '1']]));
        assert.equal(
          await store.saveSnapshotRows(
            name,
            { position: 25n, state: 'full' },
            [{ key: 'd', value: '4' }],
            null,
          ),
          true,
        );
        assert.deepEqual(await rowsOf(name), new Map([['d', '4']]));
        assert.deepEqual(await store.loadSnapshot(name), { position: 25n, state: 'full' });
      });
    });

    describe('JSON', () => {
      it('round-trips data and metadata: unicode, nesting, numbers, booleans, null', async () => {
        const stream = `json-${uid()}`;
        const data: JsonObject = {
          text: 'héllo wörld — 日本語 — עברית — 🔑🗝️ — e\u0301 — "quoted" \\ back \n new \t tab \u0000 nul',
          'ключ 🔑': { nested: { deeper: [1, [2, [3, { four: 4 }]], []] } },
          numbers: [0, -1, 1.5, -2.25e-7, 1e21, Number.MAX_SAFE_INTEGER],
          flags: [true, false],
          nothing: null,
          empty: {},
          emptyText: '',
        };
        const metadata: JsonObject = {
          correlationId: randomUUID(),
          actor: { name: 'Zoë', roles: ['admin'] },
        };
        await store.append(stream, [event('Json', data, metadata)], 'no_stream');
        const [fromStream] = await store.readStream(stream);
        assert.deepEqual(fromStream?.data, data);
        assert.deepEqual(fromStream?.metadata, metadata);
        const [fromAll] = await collect(store.readAll({ streamPrefix: stream }));
        assert.deepEqual(fromAll?.data, data);
        assert.deepEqual(fromAll?.metadata, metadata);
        const [live] = await first(store.subscribe({ streamPrefix: stream }), 1);
        assert.deepEqual(live?.data, data);
        assert.deepEqual(live?.metadata, metadata);
      });
    });

    describe('close', () => {
      it('completes subscriptions, then every call fails with ERR_STORE_CLOSED', async () => {
        const own = await factory();
        const closing = own.store;
        try {
          await closing.append(`close-${uid()}`, [event()], 'any');
          let completed = false;
          let failed: unknown;
          closing.subscribe().subscribe({
            complete: () => {
              completed = true;
            },
            error: (error: unknown) => {
              failed = error;
            },
          });
          await sleep(20);
          await closing.close();
          assert.equal(failed, undefined);
          assert.ok(completed, 'the subscription completed');

          await rejectsWith(closing.append(`close-${uid()}`, [event()], 'any'), 'ERR_STORE_CLOSED');
          await rejectsWith(closing.readStream('close'), 'ERR_STORE_CLOSED');
          await rejectsWith(collect(closing.readAll()), 'ERR_STORE_CLOSED');
          await rejectsWith(closing.headPosition(), 'ERR_STORE_CLOSED');
          await rejectsWith(closing.deleteStream('close'), 'ERR_STORE_CLOSED');
          await rejectsWith(closing.loadSnapshot('close'), 'ERR_STORE_CLOSED');
          await rejectsWith(closing.saveSnapshot('close', { position: 1n, state: {} }), 'ERR_STORE_CLOSED');
          await rejectsWith(firstValueFrom(closing.subscribe()), 'ERR_STORE_CLOSED');
          await closing.close();
        } finally {
          await own.cleanup();
        }
      });
    });
  });
}

/**
 * What the embedded adapters (memory, sqlite) promise beyond the contract: a delete erases events
 * from readAll too, every event id is indexed, so a retry is recognised even when other events
 * followed it, and partial overlaps are caught wherever they are.
 */
export function testEmbeddedEventStore(name: string, factory: StoreFactory): void {
  describe(`embedded EventStore: ${name}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;

    before(async () => {
      ({ store, cleanup } = await factory());
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('a deleted stream vanishes from readAll, and its event ids can be written again', async () => {
      const prefix = `erase-${uid()}`;
      const doomed = events(3);
      await store.append(`${prefix}-doomed`, doomed, 'no_stream');
      await store.append(`${prefix}-kept`, [event()], 'no_stream');
      await store.deleteStream(`${prefix}-doomed`);
      const left = await collect(store.readAll({ streamPrefix: prefix }));
      assert.deepEqual(
        left.map((recorded) => recorded.streamName),
        [`${prefix}-kept`],
      );
      const again = await store.append(`${prefix}-doomed`, doomed, 'no_stream');
      assert.equal(again.nextExpectedRevision, 5n);
    });

    it('a deleted stream never reaches a subscriber that catches up later', async () => {
      const prefix = `erasesub-${uid()}`;
      await store.append(`${prefix}-doomed`, events(2), 'no_stream');
      const kept = event();
      await store.append(`${prefix}-kept`, [kept], 'no_stream');
      await store.deleteStream(`${prefix}-doomed`);
      assert.deepEqual(ids(await first(store.subscribe({ streamPrefix: prefix }), 1)), [kept.eventId]);
    });

    it('positions are never reused after the newest events are deleted', async () => {
      const prefix = `reuse-${uid()}`;
      const doomed = await store.append(`${prefix}-doomed`, events(2), 'no_stream');
      await store.deleteStream(`${prefix}-doomed`);
      const next = await store.append(`${prefix}-next`, [event()], 'no_stream');
      assert.ok(next.position > doomed.position);
    });

    it('recognises a retry even when other events followed it', async () => {
      const stream = `retrylate-${uid()}`;
      const batch = events(2);
      const original = await store.append(stream, batch, 'no_stream');
      await store.append(stream, events(2), 1n);
      assert.deepEqual(await store.append(stream, batch, 'no_stream'), original);
      assert.equal((await store.readStream(stream)).length, 4);
    });

    it('treats ids written elsewhere, in another order, or partly as conflicts', async () => {
      const stream = `overlap2-${uid()}`;
      const [a, b] = events(2);
      assert.ok(a !== undefined && b !== undefined);
      await store.append(stream, [a, b], 'no_stream');
      await rejectsWith(store.append(`${stream}-elsewhere`, [a, b], 'any'), 'ERR_VERSION_CONFLICT');
      await rejectsWith(store.append(stream, [b, a], 'any'), 'ERR_VERSION_CONFLICT');
      await rejectsWith(store.append(stream, [event(), a], 'any'), 'ERR_VERSION_CONFLICT');
      assert.deepEqual(await store.readStream(`${stream}-elsewhere`), []);
      assert.equal((await store.readStream(stream)).length, 2);
    });

    it('a sub-run of an earlier batch is a retry of those events', async () => {
      const stream = `subrun-${uid()}`;
      const batch = events(3);
      await store.append(stream, batch, 'no_stream');
      const written = await store.readStream(stream);
      assert.deepEqual(await store.append(stream, batch.slice(1, 2), 'no_stream'), {
        nextExpectedRevision: 1n,
        position: written[1]?.position,
      });
      assert.equal((await store.readStream(stream)).length, 3);
    });
  });
}
