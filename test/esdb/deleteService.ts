import type {
  DeleteReq,
  DeleteResp,
  TombstoneReq,
  TombstoneResp,
} from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import type * as grpc from '@grpc/grpc-js';
import type { DeleteOutcome } from './eventLog.js';
import { expectedRevisionOf } from './expectedRevision.js';
import { streamNameOf } from './protoConvert.js';
import type { ServerContext } from './serverContext.js';
import {
  invalidArgumentError,
  type ServerError,
  streamDeletedError,
  wrongExpectedVersionError,
} from './serverErrors.js';

/**
 * Streams.Delete (soft delete) and Streams.Tombstone (hard delete), both unary. Failures are error
 * trailers: `wrong-expected-version` with the versions, or `stream-deleted` once a stream is tombstoned.
 */
export function handleDelete(
  context: ServerContext,
  call: grpc.ServerUnaryCall<DeleteReq, DeleteResp>,
  callback: grpc.sendUnaryData<DeleteResp>,
): void {
  context.countCall('Delete');
  const options = call.request.getOptions();
  if (options === undefined) {
    callback(invalidArgumentError('DeleteReq.options is required'));
    return;
  }
  const streamName = streamNameOf(options.getStreamIdentifier());
  const expected = expectedRevisionOf(options);
  const outcome = context.log.softDelete(streamName, expected);
  if (outcome.kind !== 'success') {
    callback(deleteError(streamName, outcome));
    return;
  }
  const position = outcome.position.toString();
  const response = new streamsPb.DeleteResp().setPosition(
    new streamsPb.DeleteResp.Position().setCommitPosition(position).setPreparePosition(position),
  );
  callback(null, response);
}

export function handleTombstone(
  context: ServerContext,
  call: grpc.ServerUnaryCall<TombstoneReq, TombstoneResp>,
  callback: grpc.sendUnaryData<TombstoneResp>,
): void {
  context.countCall('Tombstone');
  const options = call.request.getOptions();
  if (options === undefined) {
    callback(invalidArgumentError('TombstoneReq.options is required'));
    return;
  }
  const streamName = streamNameOf(options.getStreamIdentifier());
  const outcome = context.log.tombstone(streamName, expectedRevisionOf(options));
  if (outcome.kind !== 'success') {
    callback(deleteError(streamName, outcome));
    return;
  }
  const position = outcome.position.toString();
  const response = new streamsPb.TombstoneResp().setPosition(
    new streamsPb.TombstoneResp.Position().setCommitPosition(position).setPreparePosition(position),
  );
  callback(null, response);
}

function deleteError(streamName: string, outcome: Exclude<DeleteOutcome, { kind: 'success' }>): ServerError {
  switch (outcome.kind) {
    case 'stream_deleted':
      return streamDeletedError(streamName);
    case 'wrong_expected_version':
      return wrongExpectedVersionError(streamName, outcome.expected, outcome.currentRevision);
    default: {
      const unreachable: never = outcome;
      throw new TypeError(`unknown delete outcome ${JSON.stringify(unreachable)}`);
    }
  }
}
