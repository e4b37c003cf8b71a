import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  EventStoreDBClient,
  jsonEvent,
  type ResolvedEvent,
  START,
  streamNameFilter,
  UnavailableError,
} from '@eventstore/db-client';
import { startEsdbTestServer } from './esdbTestServer.js';
import { SubscriptionRecorder } from './subscriptionRecorder.js';

/** The server going down and coming back, cluster discovery, and binding a chosen port. */

async function revisionsOf(client: EventStoreDBClient, stream: string): Promise<bigint[]> {
  const read: ResolvedEvent[] = [];
  for await (const resolved of client.readStream(stream)) read.push(resolved);
  return read.map((resolved) => resolved.event?.revision ?? -1n);
}

// A timeout so a subscription that never delivers fails fast instead of stalling the run.
describe('EventStoreDB test server lifecycle', { timeout: 20_000 }, () => {
  it('stop() ends a live subscription with UNAVAILABLE; start() comes back on the same port with the data', async () => {
    const server = await startEsdbTestServer();
    const client = EventStoreDBClient.connectionString(server.connectionString);
    const stream = `kept-${randomUUID()}`;
    try {
      await client.appendToStream(stream, [
        jsonEvent({ type: 'A', data: {} }),
        jsonEvent({ type: 'B', data: {} }),
      ]);
      const recorder = new SubscriptionRecorder();
      const subscription = client.subscribeToAll({
        fromPosition: START,
        filter: streamNameFilter({ prefixes: [stream] }),
      });
      recorder.attach(subscription);
      await recorder.waitForKind('caughtUp');
      const port = server.port;

      await server.stop();
      await recorder.waitForKind('error');
      const failure = recorder.entries.find((entry) => entry.kind === 'error');
      assert.ok(failure?.kind === 'error' && failure.error instanceof UnavailableError);
      await assert.rejects(revisionsOf(client, stream), UnavailableError, 'nothing listens while stopped');

      await server.start();
      assert.equal(server.port, port);
      assert.deepEqual(await revisionsOf(client, stream), [0n, 1n], 'same data, and the client reconnects');
      await client.appendToStream(stream, jsonEvent({ type: 'C', data: {} }), { expectedRevision: 1n });
      assert.deepEqual(await revisionsOf(client, stream), [0n, 1n, 2n]);

      // A restarted node begins a new epoch: a new system event in $all.
      let epochs = 0;
      for await (const resolved of client.readAll()) {
        if (resolved.event?.streamId === '$epoch-information') epochs += 1;
      }
      assert.equal(epochs, 2);
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it('esdb+discover asks Gossip.Read, finds this node as leader and works against it', async () => {
    const server = await startEsdbTestServer();
    const client = EventStoreDBClient.connectionString(server.discoverConnectionString);
    try {
      const stream = `discovered-${randomUUID()}`;
      await client.appendToStream(stream, jsonEvent({ type: 'A', data: {} }));
      assert.deepEqual(await revisionsOf(client, stream), [0n]);
      assert.equal(server.callCount('Gossip.Read'), 1);
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it('binds the port it is given, refuses to start again once closed, and close() is idempotent', async () => {
    const first = await startEsdbTestServer();
    const port = first.port;
    await first.close();
    await first.close();
    await assert.rejects(first.start(), /closed/);

    const second = await startEsdbTestServer({ port });
    try {
      assert.equal(second.port, port);
      assert.equal(second.connectionString, `esdb://127.0.0.1:${port}?tls=false`);
    } finally {
      await second.close();
    }
  });
});
