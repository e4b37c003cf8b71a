import codePb from '@eventstore/db-client/generated/code_pb.js';
import sharedPb from '@eventstore/db-client/generated/shared_pb.js';
import statusPb from '@eventstore/db-client/generated/status_pb.js';
import type { BatchAppendReq, BatchAppendResp } from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import type * as grpc from '@grpc/grpc-js';
import anyPb from 'google-protobuf/google/protobuf/any_pb.js';
import emptyPb from 'google-protobuf/google/protobuf/empty_pb.js';
import type { ProposedEvent, WriteOutcome } from './eventLog.js';
import { ANY_REVISION, type ExpectedRevision } from './expectedRevision.js';
import {
  proposedEventOf,
  streamIdentifier,
  streamNameOf,
  uuidMessage,
  uuidToString,
} from './protoConvert.js';
import type { ServerContext } from './serverContext.js';

/**
 * Streams.BatchAppend (bidirectional): the client keeps one call open and sends each append as one or
 * more requests sharing a correlation id, the first with options, the last with is_final. Each append
 * gets one reply with that correlation id; failures are a google.rpc.Status whose details pack
 * WrongExpectedVersion or StreamDeleted.
 */
export function handleBatchAppend(
  context: ServerContext,
  call: grpc.ServerDuplexStream<BatchAppendReq, BatchAppendResp>,
): void {
  context.countCall('BatchAppend');
  let ended = false;
  const pending = new Map<string, { options: BatchAppendReq.Options | undefined; events: ProposedEvent[] }>();
  const untrack = context.track({
    abort: (error) => {
      if (ended) return;
      ended = true;
      call.emit('error', error);
    },
  });
  const finish = () => {
    ended = true;
    untrack();
  };
  call.on('cancelled', finish);
  call.on('error', finish);
  call.on('end', () => {
    if (ended) return;
    finish();
    call.end();
  });

  call.on('data', (request: BatchAppendReq) => {
    if (ended) return;
    const correlationId = uuidToString(request.getCorrelationId());
    const batch = pending.get(correlationId) ?? { options: undefined, events: [] };
    pending.set(correlationId, batch);
    if (request.hasOptions()) batch.options = request.getOptions();
    for (const message of request.getProposedMessagesList()) batch.events.push(proposedEventOf(message));
    if (!request.getIsFinal()) return;
    pending.delete(correlationId);
    const streamName = streamNameOf(batch.options?.getStreamIdentifier());
    const expected = batch.options === undefined ? ANY_REVISION : expectedOf(batch.options);
    const outcome = context.log.append(streamName, expected, batch.events);
    call.write(batchResponse(correlationId, streamName, expected, outcome));
  });
}

function expectedOf(options: BatchAppendReq.Options): ExpectedRevision {
  if (options.hasStreamPosition()) return { kind: 'revision', revision: BigInt(options.getStreamPosition()) };
  if (options.hasNoStream()) return { kind: 'no_stream' };
  if (options.hasStreamExists()) return { kind: 'stream_exists' };
  return ANY_REVISION;
}

function batchResponse(
  correlationId: string,
  streamName: string,
  expected: ExpectedRevision,
  outcome: WriteOutcome,
): BatchAppendResp {
  const empty = () => new emptyPb.Empty();
  const response = new streamsPb.BatchAppendResp()
    .setCorrelationId(uuidMessage(correlationId, false))
    .setStreamIdentifier(streamIdentifier(streamName));
  switch (expected.kind) {
    case 'any':
      response.setAny(empty());
      break;
    case 'no_stream':
      response.setNoStream(empty());
      break;
    case 'stream_exists':
      response.setStreamExists(empty());
      break;
    case 'revision':
      response.setStreamPosition(expected.revision.toString());
      break;
    default: {
      const unreachable: never = expected;
      throw new TypeError(`unknown expected revision ${JSON.stringify(unreachable)}`);
    }
  }
  switch (outcome.kind) {
    case 'success': {
      const success = new streamsPb.BatchAppendResp.Success();
      if (outcome.currentRevision === undefined) success.setNoStream(empty());
      else success.setCurrentRevision(outcome.currentRevision.toString());
      if (outcome.position === undefined) success.setNoPosition(empty());
      else {
        const position = outcome.position.toString();
        success.setPosition(
          new sharedPb.AllStreamPosition().setCommitPosition(position).setPreparePosition(position),
        );
      }
      return response.setSuccess(success);
    }
    case 'wrong_expected_version':
      return response.setError(
        rpcStatus(
          `WrongExpectedVersion: stream ${streamName}`,
          wrongExpectedVersionDetails(outcome, expected),
          'event_store.client.WrongExpectedVersion',
        ),
      );
    case 'stream_deleted':
      return response.setError(
        rpcStatus(
          `Event stream '${streamName}' is deleted.`,
          new sharedPb.StreamDeleted().setStreamIdentifier(streamIdentifier(streamName)),
          'event_store.client.StreamDeleted',
        ),
      );
    default: {
      const unreachable: never = outcome;
      throw new TypeError(`unknown write outcome ${JSON.stringify(unreachable)}`);
    }
  }
}

function wrongExpectedVersionDetails(
  outcome: Extract<WriteOutcome, { kind: 'wrong_expected_version' }>,
  expected: ExpectedRevision,
): InstanceType<typeof sharedPb.WrongExpectedVersion> {
  const empty = () => new emptyPb.Empty();
  const details = new sharedPb.WrongExpectedVersion();
  if (outcome.currentRevision === undefined) details.setCurrentNoStream(empty());
  else details.setCurrentStreamRevision(outcome.currentRevision.toString());
  switch (expected.kind) {
    case 'any':
      return details.setExpectedAny(empty());
    case 'no_stream':
      return details.setExpectedNoStream(empty());
    case 'stream_exists':
      return details.setExpectedStreamExists(empty());
    case 'revision':
      return details.setExpectedStreamPosition(expected.revision.toString());
    default: {
      const unreachable: never = expected;
      throw new TypeError(`unknown expected revision ${JSON.stringify(unreachable)}`);
    }
  }
}

function rpcStatus(
  message: string,
  details: { serializeBinary(): Uint8Array },
  typeName: string,
): InstanceType<typeof statusPb.Status> {
  const packed = new anyPb.Any();
  packed.pack(details.serializeBinary(), typeName);
  return new statusPb.Status()
    .setCode(codePb.Code.FAILED_PRECONDITION)
    .setMessage(message)
    .setDetails(packed);
}
