import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  type AllStreamResolvedEvent,
  EventStoreDBClient,
  jsonEvent,
  type Position,
  START,
  streamNameFilter,
} from '@eventstore/db-client';
import { type EsdbTestServer, startEsdbTestServer } from './esdbTestServer.js';
import { SubscriptionRecorder } from './subscriptionRecorder.js';

/** `$all` reads and catch-up subscriptions (stream and `$all`, filtered, with checkpoints), via the real client. */

function event(type = 'Tested') {
  return jsonEvent({ id: randomUUID(), type, data: {} });
}

async function appendOne(client: EventStoreDBClient, stream: string, type = 'Tested'): Promise<Position> {
  const { position } = await client.appendToStream(stream, event(type));
  assert.ok(position !== undefined);
  return position;
}

async function readAllEvents(client: EventStoreDBClient, options = {}): Promise<AllStreamResolvedEvent[]> {
  const read: AllStreamResolvedEvent[] = [];
  for await (const resolved of client.readAll(options)) read.push(resolved);
  return read;
}

/** The recorded kinds without checkpoints, whose count depends on the events scanned. */
function sequence(recorder: SubscriptionRecorder): string[] {
  return recorder.entries
    .filter((entry) => entry.kind !== 'checkpoint')
    .map((entry) => (entry.kind === 'event' ? `${entry.streamId}@${entry.revision}` : entry.kind));
}

// A timeout so a subscription that never delivers fails fast instead of stalling the run.
describe('EventStoreDB test server: $all and subscriptions', { timeout: 20_000 }, () => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;
  const subscriptions: { unsubscribe(): Promise<void> }[] = [];

  before(async () => {
    server = await startEsdbTestServer();
    client = EventStoreDBClient.connectionString(server.connectionString);
  });
  after(async () => {
    for (const subscription of subscriptions) await subscription.unsubscribe();
    await client.dispose();
    await server.close();
  });

  it('holds system events in $all besides the user events, in increasing positions', async () => {
    await appendOne(client, `user-${randomUUID()}`);
    const all = await readAllEvents(client);
    const streams = all.map((resolved) => resolved.event?.streamId ?? '');
    assert.ok(
      streams.some((stream) => stream.startsWith('$')),
      'a fresh node has system events',
    );
    assert.ok(streams.some((stream) => stream.startsWith('user-')));
    const positions = all.map((resolved) => resolved.event?.position?.commit ?? 0n);
    assert.ok(
      positions.every((position, i) => position > 0n && (i === 0 || position > (positions[i - 1] ?? 0n))),
    );
  });

  it('reads $all forwards inclusive of a position and backwards exclusive of it', async () => {
    const stream = `inclusive-${randomUUID()}`;
    const first = await appendOne(client, stream);
    await appendOne(client, stream);
    const forwards = await readAllEvents(client, { fromPosition: first, maxCount: 2 });
    assert.deepEqual(
      forwards.map((resolved) => [resolved.event?.streamId, resolved.event?.revision]),
      [
        [stream, 0n],
        [stream, 1n],
      ],
    );
    const backwards = await readAllEvents(client, {
      fromPosition: first,
      direction: 'backwards',
      maxCount: 1,
    });
    assert.ok((backwards[0]?.event?.position?.commit ?? first.commit) < first.commit);
  });

  it('subscribeToAll with a prefix filter from a position: exclusive start, catch-up, caughtUp, then live', async () => {
    const prefix = `sub-${randomUUID()}-`;
    const start = await appendOne(client, `${prefix}a`);
    await appendOne(client, `other-${randomUUID()}`);
    await appendOne(client, `${prefix}b`);

    const recorder = new SubscriptionRecorder();
    const subscription = client.subscribeToAll({
      fromPosition: start,
      filter: streamNameFilter({ prefixes: [prefix], checkpointReached: recorder.checkpointReached }),
    });
    subscriptions.push(subscription);
    recorder.attach(subscription);
    await recorder.waitForKind('caughtUp');
    await appendOne(client, `other-${randomUUID()}`);
    await appendOne(client, `${prefix}a`);
    await recorder.waitFor(() => recorder.events().length >= 2);

    assert.deepEqual(sequence(recorder), ['confirmation', `${prefix}b@0`, 'caughtUp', `${prefix}a@1`]);
  });

  it('subscribeToAll without a filter delivers system and user events alike and no checkpoints', async () => {
    const stream = `unfiltered-${randomUUID()}`;
    const recorder = new SubscriptionRecorder();
    const subscription = client.subscribeToAll({ fromPosition: START });
    subscriptions.push(subscription);
    recorder.attach(subscription);
    await recorder.waitForKind('caughtUp');
    await appendOne(client, stream);
    await recorder.waitFor(() => recorder.events(stream).length === 1);
    assert.ok(recorder.events().some((entry) => entry.streamId.startsWith('$')));
    assert.ok(!recorder.kinds().includes('checkpoint'));
  });

  it('subscribeToStream from a revision is exclusive of it and goes live after caughtUp', async () => {
    const stream = `stream-sub-${randomUUID()}`;
    await client.appendToStream(stream, [event(), event(), event()]);
    const recorder = new SubscriptionRecorder();
    const subscription = client.subscribeToStream(stream, { fromRevision: 0n });
    subscriptions.push(subscription);
    recorder.attach(subscription);
    await recorder.waitForKind('caughtUp');
    await appendOne(client, stream);
    await recorder.waitFor(() => recorder.events().length === 3);
    assert.deepEqual(sequence(recorder), [
      'confirmation',
      `${stream}@1`,
      `${stream}@2`,
      'caughtUp',
      `${stream}@3`,
    ]);
  });

  it('subscribeToStream on a stream that does not exist yet waits for it', async () => {
    const stream = `later-${randomUUID()}`;
    const recorder = new SubscriptionRecorder();
    const subscription = client.subscribeToStream(stream);
    subscriptions.push(subscription);
    recorder.attach(subscription);
    await recorder.waitForKind('caughtUp');
    await appendOne(client, stream);
    await recorder.waitFor(() => recorder.events().length === 1);
    assert.deepEqual(sequence(recorder), ['confirmation', 'caughtUp', `${stream}@0`]);
  });

  it('sends checkpoints on a filtered subscription while it scans unmatched events, and resuming from one loses nothing', async () => {
    const prefix = `quiet-${randomUUID()}-`;
    const recorder = new SubscriptionRecorder();
    const subscription = client.subscribeToAll({
      fromPosition: START,
      // A checkpoint every maxSearchWindow × checkpointInterval = 2 events scanned.
      filter: streamNameFilter({
        prefixes: [prefix],
        maxSearchWindow: 1,
        checkpointInterval: 2,
        checkpointReached: recorder.checkpointReached,
      }),
    });
    subscriptions.push(subscription);
    recorder.attach(subscription);
    await recorder.waitForKind('caughtUp');
    const checkpointsAtCaughtUp = recorder.kinds().filter((kind) => kind === 'checkpoint').length;
    const noise = `noise-${randomUUID()}`;
    let lastNoise: Position | undefined;
    for (let i = 0; i < 6; i += 1) lastNoise = await appendOne(client, noise);
    await recorder.waitForKind('checkpoint', checkpointsAtCaughtUp + 3);

    const checkpoints = recorder.entries.flatMap((entry) =>
      entry.kind === 'checkpoint' ? [entry.position] : [],
    );
    assert.ok(checkpoints.every((position, i) => i === 0 || position > (checkpoints[i - 1] ?? 0n)));
    assert.ok((checkpoints.at(-1) ?? 0n) <= (lastNoise?.commit ?? 0n));
    assert.equal(recorder.events().length, 0, 'nothing matched the filter');

    const resumeFrom = checkpoints.at(-1) ?? 0n;
    await appendOne(client, `${prefix}x`);
    const resumed = new SubscriptionRecorder();
    const again = client.subscribeToAll({
      fromPosition: { commit: resumeFrom, prepare: resumeFrom },
      filter: streamNameFilter({ prefixes: [prefix] }),
    });
    subscriptions.push(again);
    resumed.attach(again);
    await resumed.waitForKind('caughtUp');
    assert.deepEqual(sequence(resumed), ['confirmation', `${prefix}x@0`, 'caughtUp']);
  });
});
