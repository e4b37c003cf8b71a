import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { EventStoreDBClient, jsonEvent } from '@eventstore/db-client';
import sharedPb from '@eventstore/db-client/generated/shared_pb.js';
import streamsGrpc from '@eventstore/db-client/generated/streams_grpc_pb.js';
import type { ReadReq, ReadResp } from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import * as grpc from '@grpc/grpc-js';
import { type EsdbTestServer, startEsdbTestServer } from './esdbTestServer.js';
import { streamIdentifier, uuidToString } from './protoConvert.js';

/**
 * What the JavaScript client never asks for or hides, checked on the wire with the package's own
 * generated stub: structured UUIDs, positions per read kind, and the checkpoint a filtered
 * subscription sends when its catch-up ends.
 */

function readOptions(configure: (options: ReadReq.Options) => void): ReadReq {
  const options = new streamsPb.ReadReq.Options()
    .setResolveLinks(false)
    .setUuidOption(new streamsPb.ReadReq.Options.UUIDOption().setString(new sharedPb.Empty()))
    .setNoFilter(new sharedPb.Empty())
    .setCount('100');
  configure(options);
  return new streamsPb.ReadReq().setOptions(options);
}

/** Reads until the server ends the call, or until `stopAfter` says enough (then cancels). */
function collect(
  stub: InstanceType<typeof streamsGrpc.StreamsClient>,
  request: ReadReq,
  stopAfter: (responses: readonly ReadResp[]) => boolean = () => false,
): Promise<ReadResp[]> {
  return new Promise((resolve, reject) => {
    const responses: ReadResp[] = [];
    const call = stub.read(request);
    call.on('data', (response: ReadResp) => {
      responses.push(response);
      if (stopAfter(responses)) {
        call.cancel();
        resolve(responses);
      }
    });
    call.on('end', () => resolve(responses));
    call.on('error', (error: grpc.ServiceError) => {
      if (error.code === grpc.status.CANCELLED) resolve(responses);
      else reject(error);
    });
  });
}

// A timeout so a subscription that never delivers fails fast instead of stalling the run.
describe('EventStoreDB test server wire format', { timeout: 20_000 }, () => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;
  let stub: InstanceType<typeof streamsGrpc.StreamsClient>;
  const stream = `wire-${randomUUID()}`;
  const id = randomUUID();

  before(async () => {
    server = await startEsdbTestServer();
    client = EventStoreDBClient.connectionString(server.connectionString);
    await client.appendToStream(stream, jsonEvent({ id, type: 'A', data: {} }));
    stub = new streamsGrpc.StreamsClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    stub.close();
    await client.dispose();
    await server.close();
  });

  it('answers with structured UUIDs when asked, string UUIDs otherwise', async () => {
    const streamOptions = () =>
      new streamsPb.ReadReq.Options.StreamOptions()
        .setStreamIdentifier(streamIdentifier(stream))
        .setStart(new sharedPb.Empty());
    const structured = await collect(
      stub,
      readOptions((options) =>
        options
          .setStream(streamOptions())
          .setUuidOption(new streamsPb.ReadReq.Options.UUIDOption().setStructured(new sharedPb.Empty())),
      ),
    );
    const structuredId = structured[0]?.getEvent()?.getEvent()?.getId();
    assert.equal(structuredId?.hasStructured(), true);
    assert.equal(uuidToString(structuredId), id);

    const plain = await collect(
      stub,
      readOptions((options) => options.setStream(streamOptions())),
    );
    assert.equal(plain[0]?.getEvent()?.getEvent()?.getId()?.getString(), id);
  });

  it('gives $all events a commit position and stream-read events none', async () => {
    const fromStream = await collect(
      stub,
      readOptions((options) =>
        options.setStream(
          new streamsPb.ReadReq.Options.StreamOptions()
            .setStreamIdentifier(streamIdentifier(stream))
            .setStart(new sharedPb.Empty()),
        ),
      ),
    );
    assert.equal(fromStream[0]?.getEvent()?.hasNoPosition(), true);
    const fromAll = await collect(
      stub,
      readOptions((options) =>
        options.setAll(new streamsPb.ReadReq.Options.AllOptions().setStart(new sharedPb.Empty())),
      ),
    );
    const recorded = fromAll.find((response) => response.getEvent()?.getEvent()?.getId()?.getString() === id);
    assert.equal(recorded?.getEvent()?.hasCommitPosition(), true);
    assert.equal(
      recorded?.getEvent()?.getCommitPosition(),
      recorded?.getEvent()?.getEvent()?.getCommitPosition(),
    );
  });

  it('ends a filtered catch-up with a checkpoint, then caughtUp', async () => {
    const filter = new streamsPb.ReadReq.Options.FilterOptions()
      .setStreamIdentifier(new streamsPb.ReadReq.Options.FilterOptions.Expression().setPrefixList([stream]))
      .setCount(new sharedPb.Empty())
      .setCheckpointintervalmultiplier(1000);
    const request = readOptions((options) =>
      options
        .setAll(new streamsPb.ReadReq.Options.AllOptions().setStart(new sharedPb.Empty()))
        .setSubscription(new streamsPb.ReadReq.Options.SubscriptionOptions())
        .setFilter(filter),
    );
    const responses = await collect(stub, request, (received) =>
      received.some((response) => response.hasCaughtUp()),
    );
    const kinds = responses.map((response) => response.getContentCase());
    const Content = streamsPb.ReadResp.ContentCase;
    assert.deepEqual(kinds, [Content.CONFIRMATION, Content.EVENT, Content.CHECKPOINT, Content.CAUGHT_UP]);
  });
});
