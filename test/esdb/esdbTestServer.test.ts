import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  jsonEvent,
  type ResolvedEvent,
  StreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { type EsdbTestServer, startEsdbTestServer } from './esdbTestServer.js';

/**
 * The test server's write and read rules, driven through the real client, once with BatchAppend
 * advertised (what a server of 21.10+ does) and once without (the client then uses Streams.Append).
 */

function events(...types: string[]) {
  return types.map((type, i) => jsonEvent({ id: randomUUID(), type, data: { i } }));
}

async function readAllOf(iterable: AsyncIterable<ResolvedEvent>): Promise<ResolvedEvent[]> {
  const read: ResolvedEvent[] = [];
  for await (const resolved of iterable) read.push(resolved);
  return read;
}

async function revisionsOf(client: EventStoreDBClient, stream: string, options = {}): Promise<bigint[]> {
  const read = await readAllOf(client.readStream(stream, options));
  return read.map((resolved) => resolved.event?.revision ?? -1n);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the call to fail');
}

for (const batchAppend of [true, false]) {
  describe(`EventStoreDB test server, BatchAppend ${batchAppend ? 'advertised' : 'not advertised'}`, () => {
    let server: EsdbTestServer;
    let client: EventStoreDBClient;

    before(async () => {
      server = await startEsdbTestServer({ batchAppend });
      client = EventStoreDBClient.connectionString(server.connectionString);
    });
    after(async () => {
      await client.dispose();
      await server.close();
    });

    it('binds 127.0.0.1 and names itself in both connection strings', () => {
      assert.ok(server.port > 0);
      assert.equal(server.connectionString, `esdb://127.0.0.1:${server.port}?tls=false`);
      assert.equal(server.discoverConnectionString, `esdb+discover://127.0.0.1:${server.port}?tls=false`);
    });

    it('reads back what was appended, with revisions from 0 and positions that are log offsets', async () => {
      const stream = `round-${randomUUID()}`;
      const written = events('Opened', 'Noted', 'Closed');
      const result = await client.appendToStream(stream, written, { expectedRevision: 'no_stream' });

      const read = await readAllOf(client.readStream(stream));
      assert.deepEqual(
        read.map((resolved) => [resolved.event?.id, resolved.event?.type, resolved.event?.revision]),
        written.map((event, i) => [event.id, event.type, BigInt(i)]),
      );
      assert.deepEqual(read[1]?.event?.data, { i: 1 });
      const positions = read.map((resolved) => resolved.event?.position?.commit ?? 0n);
      for (const [i, position] of positions.entries()) {
        assert.ok(position > 0n, 'no user event sits at position 0');
        assert.equal(read[i]?.event?.position?.prepare, position, 'commit == prepare');
        if (i > 0) assert.ok(position - (positions[i - 1] ?? 0n) > 1n, 'positions grow by record size');
      }
      assert.equal(result.nextExpectedRevision, 2n);
      assert.deepEqual(result.position, read[2]?.event?.position);
    });

    it('reads forwards inclusive of a revision, backwards from the end or a revision, up to maxCount', async () => {
      const stream = `directions-${randomUUID()}`;
      await client.appendToStream(stream, events('A', 'B', 'C', 'D'));

      assert.deepEqual(await revisionsOf(client, stream, { fromRevision: 2n }), [2n, 3n]);
      assert.deepEqual(await revisionsOf(client, stream, { maxCount: 2 }), [0n, 1n]);
      assert.deepEqual(await revisionsOf(client, stream, { direction: BACKWARDS, fromRevision: END }), [
        3n,
        2n,
        1n,
        0n,
      ]);
      assert.deepEqual(await revisionsOf(client, stream, { direction: BACKWARDS, fromRevision: 1n }), [
        1n,
        0n,
      ]);
      assert.deepEqual(await revisionsOf(client, stream, { fromRevision: END }), []);
    });

    it('refuses each expected revision form that does not hold, with the versions in the error', async () => {
      const stream = `expected-${randomUUID()}`;
      const missing = await rejection(
        client.appendToStream(stream, events('X'), { expectedRevision: 'stream_exists' }),
      );
      assert.ok(missing instanceof WrongExpectedVersionError);
      assert.equal(missing.streamName, stream);
      assert.equal(missing.expectedVersion, 'stream_exists');
      assert.equal(missing.actualVersion, 'no_stream');
      const exactOnMissing = await rejection(
        client.appendToStream(stream, events('X'), { expectedRevision: 0n }),
      );
      assert.ok(exactOnMissing instanceof WrongExpectedVersionError);
      assert.equal(exactOnMissing.actualVersion, 'no_stream');
      await assert.rejects(readAllOf(client.readStream(stream)), StreamNotFoundError, 'nothing was written');

      await client.appendToStream(stream, events('A', 'B'), { expectedRevision: 'no_stream' });
      const exists = await rejection(
        client.appendToStream(stream, events('X'), { expectedRevision: 'no_stream' }),
      );
      assert.ok(exists instanceof WrongExpectedVersionError);
      assert.equal(exists.expectedVersion, 'no_stream');
      assert.equal(exists.actualVersion, 1n);
      const stale = await rejection(client.appendToStream(stream, events('X'), { expectedRevision: 0n }));
      assert.ok(stale instanceof WrongExpectedVersionError);
      assert.equal(stale.expectedVersion, 0n);
      assert.equal(stale.actualVersion, 1n);
      const ahead = await rejection(client.appendToStream(stream, events('X'), { expectedRevision: 5n }));
      assert.ok(ahead instanceof WrongExpectedVersionError);
      assert.equal(ahead.expectedVersion, 5n);
      assert.deepEqual(await revisionsOf(client, stream), [0n, 1n], 'no refused append wrote anything');

      assert.equal(
        (await client.appendToStream(stream, events('C'), { expectedRevision: 1n })).nextExpectedRevision,
        2n,
      );
      const existsOk = await client.appendToStream(stream, events('D'), {
        expectedRevision: 'stream_exists',
      });
      assert.equal(existsOk.nextExpectedRevision, 3n);
      assert.equal(
        (await client.appendToStream(stream, events('E'), { expectedRevision: 'any' })).nextExpectedRevision,
        4n,
      );
    });

    it('returns a version conflict as a result instead of throwing when asked to', async () => {
      const stream = `no-throw-${randomUUID()}`;
      const lenient = EventStoreDBClient.connectionString(
        `${server.connectionString}&throwOnAppendFailure=false`,
      );
      try {
        await lenient.appendToStream(stream, events('A'));
        const result = await lenient.appendToStream(stream, events('B'), { expectedRevision: 'no_stream' });
        assert.equal(result.success, false);
      } finally {
        await lenient.dispose();
      }
    });

    it('treats a re-append of already written event ids as a retry: same result, nothing written twice', async () => {
      const stream = `idempotent-${randomUUID()}`;
      const first = events('A', 'B');
      const written = await client.appendToStream(stream, first, { expectedRevision: 'no_stream' });
      const retried = await client.appendToStream(stream, first, { expectedRevision: 'no_stream' });
      assert.deepEqual(retried, written);

      const third = events('C');
      const atRevision = await client.appendToStream(stream, third, { expectedRevision: 1n });
      assert.deepEqual(await client.appendToStream(stream, third, { expectedRevision: 1n }), atRevision);
      assert.deepEqual(await client.appendToStream(stream, third, { expectedRevision: 'any' }), atRevision);
      assert.deepEqual(await client.appendToStream(stream, first, { expectedRevision: 'any' }), written);
      assert.deepEqual(await revisionsOf(client, stream), [0n, 1n, 2n]);

      const differentIds = await rejection(
        client.appendToStream(stream, events('A', 'B'), { expectedRevision: 'no_stream' }),
      );
      assert.ok(
        differentIds instanceof WrongExpectedVersionError,
        'new ids at a stale revision still conflict',
      );
    });

    it('soft delete hides the stream; an append with ANY or NO_STREAM recreates it and revisions continue', async () => {
      for (const expectedRevision of ['any', 'no_stream'] as const) {
        const stream = `soft-${expectedRevision}-${randomUUID()}`;
        await client.appendToStream(stream, events('A', 'B'));
        await client.deleteStream(stream, { expectedRevision: 1n });
        await assert.rejects(readAllOf(client.readStream(stream)), StreamNotFoundError);

        const recreated = await client.appendToStream(stream, events('C', 'D'), { expectedRevision });
        assert.equal(recreated.nextExpectedRevision, 3n);
        assert.deepEqual(await revisionsOf(client, stream), [2n, 3n]);
        assert.equal((await client.getStreamMetadata(stream)).metadata?.truncateBefore, 2);
        const again = await rejection(
          client.appendToStream(stream, events('E'), { expectedRevision: 'no_stream' }),
        );
        assert.ok(again instanceof WrongExpectedVersionError, 'only the first write recreates');
      }
    });

    it('soft delete checks the expected revision and answers a conflict with the versions', async () => {
      const stream = `soft-conflict-${randomUUID()}`;
      await client.appendToStream(stream, events('A', 'B'));
      const conflict = await rejection(client.deleteStream(stream, { expectedRevision: 0n }));
      assert.ok(conflict instanceof WrongExpectedVersionError);
      assert.equal(conflict.streamName, stream);
      assert.equal(conflict.expectedVersion, 0n);
      assert.equal(conflict.actualVersion, 1n);
      assert.deepEqual(await revisionsOf(client, stream), [0n, 1n], 'the stream was not deleted');
    });

    it('refuses to soft delete a stream that has neither events nor metadata, as 24.x does', async () => {
      const stream = `never-written-${randomUUID()}`;
      const conflict = await rejection(client.deleteStream(stream));
      assert.ok(conflict instanceof WrongExpectedVersionError);
      assert.equal(conflict.streamName, stream);
      assert.equal(conflict.expectedVersion, -2n, 'ANY, as the server writes it');
      assert.equal(conflict.actualVersion, -1n, 'no stream, as the server writes it');

      const deleted = `deleted-twice-${randomUUID()}`;
      await client.appendToStream(deleted, events('A'));
      await client.deleteStream(deleted);
      await client.deleteStream(deleted);
      await assert.rejects(readAllOf(client.readStream(deleted)), StreamNotFoundError);
    });

    it('after a tombstone every read, append, delete, metadata read and subscription says stream deleted', async () => {
      const stream = `tomb-${randomUUID()}`;
      await client.appendToStream(stream, events('A'));
      await client.tombstoneStream(stream);

      const read = await rejection(readAllOf(client.readStream(stream)));
      assert.ok(read instanceof StreamDeletedError);
      assert.equal(read.streamName, stream);
      assert.ok((await rejection(client.appendToStream(stream, events('B')))) instanceof StreamDeletedError);
      const recreate = client.appendToStream(stream, events('B'), { expectedRevision: 'no_stream' });
      assert.ok((await rejection(recreate)) instanceof StreamDeletedError);
      assert.ok((await rejection(client.deleteStream(stream))) instanceof StreamDeletedError);
      assert.ok((await rejection(client.tombstoneStream(stream))) instanceof StreamDeletedError);
      assert.ok((await rejection(client.getStreamMetadata(stream))) instanceof StreamDeletedError);
      const subscription = client.subscribeToStream(stream);
      try {
        const [error] = await new Promise<unknown[]>((resolve) =>
          subscription.once('error', (e) => resolve([e])),
        );
        assert.ok(error instanceof StreamDeletedError);
      } finally {
        await subscription.unsubscribe();
      }
    });

    it('says stream not found, in-band, for a stream that was never written', async () => {
      const error = await rejection(readAllOf(client.readStream(`never-${randomUUID()}`)));
      assert.ok(error instanceof StreamNotFoundError);
    });

    it('applies $maxCount and $tb from the stream metadata to stream reads, not to $all', async () => {
      const stream = `meta-${randomUUID()}`;
      await client.appendToStream(stream, events('A', 'B', 'C', 'D', 'E'));
      await client.setStreamMetadata(stream, { maxCount: 2 });
      assert.deepEqual(await revisionsOf(client, stream), [3n, 4n]);
      assert.deepEqual(await revisionsOf(client, stream, { direction: BACKWARDS, fromRevision: END }), [
        4n,
        3n,
      ]);

      await client.setStreamMetadata(stream, { truncateBefore: 1 });
      assert.deepEqual(await revisionsOf(client, stream), [1n, 2n, 3n, 4n]);
      assert.deepEqual((await client.getStreamMetadata(stream)).metadata, { truncateBefore: 1 });

      const inAll = (await readAllOf(client.readAll())).filter(
        (resolved) => resolved.event?.streamId === stream,
      );
      assert.equal(inAll.length, 5, '$all keeps every event until a scavenge');
    });

    it(`counts the calls: appends go through ${batchAppend ? 'BatchAppend' : 'Append'}`, async () => {
      const counts = () =>
        Object.fromEntries(
          ['GetSupportedMethods', 'Append', 'BatchAppend', 'Read'].map((method) => [
            method,
            server.callCount(method),
          ]),
        );
      const before = counts();
      const fresh = EventStoreDBClient.connectionString(server.connectionString);
      try {
        for (let i = 0; i < 3; i += 1) await fresh.appendToStream(`count-${randomUUID()}`, events('A'));
        await readAllOf(fresh.readStream(`count-${randomUUID()}`)).catch(() => {});
      } finally {
        await fresh.dispose();
      }
      const after = counts();
      // Features are fetched once per connection; BatchAppend is one long-lived call the client
      // reuses, Append one call per append.
      assert.deepEqual(
        {
          GetSupportedMethods: (after.GetSupportedMethods ?? 0) - (before.GetSupportedMethods ?? 0),
          Append: (after.Append ?? 0) - (before.Append ?? 0),
          BatchAppend: (after.BatchAppend ?? 0) - (before.BatchAppend ?? 0),
          Read: (after.Read ?? 0) - (before.Read ?? 0),
        },
        { GetSupportedMethods: 1, Append: batchAppend ? 0 : 3, BatchAppend: batchAppend ? 1 : 0, Read: 1 },
      );
    });
  });
}
