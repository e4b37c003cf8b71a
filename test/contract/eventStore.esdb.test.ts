import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { binaryEvent, EventStoreDBClient } from '@eventstore/db-client';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import type { EventToAppend, RecordedEvent } from '../../src/store/eventStore.js';
import { type EsdbTestServer, startEsdbTestServer } from '../esdb/esdbTestServer.js';
import { type StoreFactory, testEventStore } from './eventStore.contract.js';

/**
 * The store contract on the EventStoreDB adapter: against the protocol-level test server, once with
 * BatchAppend advertised (what a server of 21.10 or later does) and once without (the client then
 * uses Streams.Append), each factory call with a server of its own; and against a real server when
 * ESDB_CONNECTION_STRING is set (every test there uses stream names of its own).
 */

function event(type = 'Tested', data: EventToAppend['data'] = {}): EventToAppend {
  return { eventId: randomUUID(), type, data, metadata: {} };
}

async function collect(iterable: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> {
  const found: RecordedEvent[] = [];
  for await (const recorded of iterable) found.push(recorded);
  return found;
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

function onTestServers(batchAppend: boolean): { factory: StoreFactory; servers: EsdbTestServer[] } {
  const servers: EsdbTestServer[] = [];
  const factory: StoreFactory = async () => {
    const server = await startEsdbTestServer({ batchAppend });
    servers.push(server);
    const store = EsdbEventStore.open(server.connectionString);
    return { store, cleanup: () => server.close() };
  };
  return { factory, servers };
}

for (const batchAppend of [true, false]) {
  const name = `esdb (test server, BatchAppend ${batchAppend ? 'on' : 'off'})`;
  const { factory, servers } = onTestServers(batchAppend);
  testEventStore(name, factory);

  describe(`${name}: the client used the append method the server offered`, () => {
    it(batchAppend ? 'every append went through BatchAppend' : 'every append went through Append', () => {
      assert.ok(servers.length > 0, 'the contract suite started its servers');
      const sum = (method: string) => servers.reduce((total, server) => total + server.callCount(method), 0);
      const [used, unused] = batchAppend ? ['BatchAppend', 'Append'] : ['Append', 'BatchAppend'];
      // BatchAppend is one long-lived call per client carrying every append; Append is one call each.
      assert.ok(sum(used) >= (batchAppend ? servers.length : 100), `${used} was called ${sum(used)} times`);
      assert.equal(sum(unused), 0, `${unused} must not be called`);
    });
  });
}

const realServer = process.env.ESDB_CONNECTION_STRING;
describe('esdb (real server from ESDB_CONNECTION_STRING)', {
  skip: realServer ? false : 'ESDB_CONNECTION_STRING is not set',
}, () => {
  if (!realServer) return;
  testEventStore(
    'esdb (real server)',
    async () => ({ store: EsdbEventStore.open(realServer), cleanup: async () => {} }),
    { freshStores: false },
  );
});

describe('EsdbEventStore on the test server', () => {
  let server: EsdbTestServer;
  let store: EsdbEventStore;

  before(async () => {
    server = await startEsdbTestServer();
    store = EsdbEventStore.open(server.connectionString);
  });
  after(async () => {
    await store.close();
    await server.close();
  });

  it("a deleted stream reads as empty but its events stay in $all until a scavenge (EventStoreDB's soft delete)", async () => {
    const prefix = `softdel-${randomUUID().slice(0, 8)}`;
    const doomed = [event(), event()];
    await store.append(`${prefix}-doomed`, doomed, 'no_stream');
    await store.deleteStream(`${prefix}-doomed`);
    assert.deepEqual(await store.readStream(`${prefix}-doomed`), []);
    const inAll = await collect(store.readAll({ streamPrefix: prefix }));
    assert.deepEqual(
      inAll.map((recorded) => recorded.eventId),
      doomed.map((e) => e.eventId),
    );
  });

  it('leaves EventStoreDB system events and snapshot streams out of readAll, subscribe and headPosition', async () => {
    const system = await startEsdbTestServer();
    const own = EsdbEventStore.open(system.connectionString);
    const raw = EventStoreDBClient.connectionString(system.connectionString);
    try {
      // A fresh server holds only its own ($-prefixed) startup events.
      const rawAll: string[] = [];
      for await (const resolved of raw.readAll()) rawAll.push(resolved.event?.streamId ?? '');
      assert.ok(rawAll.length > 0 && rawAll.every((stream) => stream.startsWith('$')));
      assert.equal(await own.headPosition(), 0n);
      assert.deepEqual(await collect(own.readAll()), []);

      const written = await own.append('visible', [event()], 'no_stream');
      await own.saveSnapshot('kl-keymeta', { position: written.position, state: { keys: 1 } });
      assert.equal(await own.headPosition(), written.position, 'the snapshot does not move the head');
      const all = await collect(own.readAll());
      assert.deepEqual(
        all.map((recorded) => recorded.streamName),
        ['visible'],
      );
      const live = await firstValueFrom(own.subscribe().pipe(take(1), toArray(), timeout(5000)));
      assert.deepEqual(
        live.map((recorded) => recorded.streamName),
        ['visible'],
      );
      assert.deepEqual(await own.loadSnapshot('kl-keymeta'), {
        position: written.position,
        state: { keys: 1 },
      });
    } finally {
      await raw.dispose();
      await own.close();
      await system.close();
    }
  });

  it('keeps one snapshot event per name ($maxCount 1)', async () => {
    const name = `trim-${randomUUID().slice(0, 8)}`;
    for (let i = 1; i <= 3; i++) await store.saveSnapshot(name, { position: BigInt(i), state: i });
    const raw = EventStoreDBClient.connectionString(server.connectionString);
    try {
      const metadata = await raw.getStreamMetadata(`keyledger.snapshot.${name}`);
      assert.equal(metadata.metadata?.maxCount, 1);
    } finally {
      await raw.dispose();
    }
    assert.deepEqual(await store.loadSnapshot(name), { position: 3n, state: 3 });
  });

  it('rejects an event id that is not a UUID, writing nothing', async () => {
    const stream = `notuuid-${randomUUID().slice(0, 8)}`;
    const head = await store.headPosition();
    await assert.rejects(
      store.append(stream, [{ eventId: 'not-a-uuid', type: 'T', data: {}, metadata: {} }], 'any'),
      (error: unknown) => codeOf(error) === 'ERR_INVALID_ARGUMENT',
    );
    assert.deepEqual(await store.readStream(stream), []);
    assert.equal(await store.headPosition(), head);
  });

  it('rejects a negative expected revision and bad options', async () => {
    await assert.rejects(
      store.append(`neg-${randomUUID().slice(0, 8)}`, [event()], -1n),
      (error: unknown) => codeOf(error) === 'ERR_INVALID_ARGUMENT',
    );
    assert.throws(
      () => EsdbEventStore.open(server.connectionString, { unavailableTimeoutMs: 0 }),
      (error: unknown) => codeOf(error) === 'ERR_INVALID_ARGUMENT',
    );
    assert.throws(
      () => EsdbEventStore.open(server.connectionString, { resubscribeTimeoutMs: Number.NaN }),
      (error: unknown) => codeOf(error) === 'ERR_INVALID_ARGUMENT',
    );
  });

  it('reports a stream that is not JSON as ERR_STORE, naming it', async () => {
    const stream = `binary-${randomUUID().slice(0, 8)}`;
    const raw = EventStoreDBClient.connectionString(server.connectionString);
    try {
      await raw.appendToStream(stream, binaryEvent({ type: 'Binary', data: new Uint8Array([1, 2, 3]) }));
    } finally {
      await raw.dispose();
    }
    await assert.rejects(store.readStream(stream), (error: unknown) => {
      assert.equal(codeOf(error), 'ERR_STORE');
      assert.equal((error as { details?: { stream?: unknown } }).details?.stream, stream);
      return true;
    });
  });

  it('connects through esdb+discover (gossip, then the leader)', async () => {
    const discovered = EsdbEventStore.open(server.discoverConnectionString);
    try {
      const stream = `discover-${randomUUID().slice(0, 8)}`;
      const result = await discovered.append(stream, [event()], 'no_stream');
      assert.equal((await store.readStream(stream))[0]?.position, result.position);
      assert.ok(server.callCount('Gossip.Read') > 0);
    } finally {
      await discovered.close();
    }
  });
});
