import type { ReadReq, ReadResp } from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import type * as grpc from '@grpc/grpc-js';
import { readEventResponse, streamIdentifier } from './protoConvert.js';
import { parseReadRequest } from './readRequest.js';
import { selectAllRead, selectStreamRead } from './readSelection.js';
import type { ServerContext } from './serverContext.js';
import { invalidArgumentError, type ServerError, streamDeletedError } from './serverErrors.js';
import { subscribeToAll, subscribeToStream } from './subscriptions.js';

/**
 * Streams.Read: one-off reads of a stream or `$all`, and subscriptions (a read whose count option is
 * `subscription`). A missing stream is the in-band stream_not_found message; a tombstoned one is the
 * `stream-deleted` error trailer.
 */
export function handleRead(context: ServerContext, call: grpc.ServerWritableStream<ReadReq, ReadResp>): void {
  context.countCall('Read');
  let ended = false;
  let stopLive = () => {};
  const untrack = context.track({ abort: (error) => fail(error) });
  const finish = () => {
    if (ended) return;
    ended = true;
    stopLive();
    untrack();
  };
  const fail = (error: ServerError) => {
    if (ended) return;
    finish();
    call.emit('error', error);
  };
  const complete = () => {
    if (ended) return;
    finish();
    call.end();
  };
  call.on('cancelled', finish);
  call.on('error', finish);

  const request = parseReadRequest(call.request);
  if (typeof request === 'string') {
    fail(invalidArgumentError(request));
    return;
  }
  const sink = { send: (response: ReadResp) => void (ended || call.write(response)), fail };
  const target = request.target;

  if (request.subscription) {
    stopLive =
      target.kind === 'stream'
        ? subscribeToStream(context.log, target, request, sink)
        : subscribeToAll(context.log, target, request, sink);
    if (ended) stopLive();
    return;
  }

  const count = request.count ?? 0n;
  if (target.kind === 'all') {
    const options = { structuredUuid: request.structuredUuid, withPosition: true };
    for (const event of selectAllRead(context.log, target, request.direction, count, request.filter)) {
      sink.send(readEventResponse(event, options));
    }
    complete();
    return;
  }
  const result = selectStreamRead(context.log, target, request.direction, count);
  switch (result.kind) {
    case 'deleted':
      fail(streamDeletedError(target.streamName));
      return;
    case 'not_found': {
      const notFound = new streamsPb.ReadResp.StreamNotFound().setStreamIdentifier(
        streamIdentifier(target.streamName),
      );
      sink.send(new streamsPb.ReadResp().setStreamNotFound(notFound));
      complete();
      return;
    }
    case 'events': {
      const options = { structuredUuid: request.structuredUuid, withPosition: false };
      for (const event of result.events) sink.send(readEventResponse(event, options));
      complete();
      return;
    }
    default: {
      const unreachable: never = result;
      throw new TypeError(`unknown read result ${JSON.stringify(unreachable)}`);
    }
  }
}
