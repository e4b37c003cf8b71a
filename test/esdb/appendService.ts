import sharedPb from '@eventstore/db-client/generated/shared_pb.js';
import type { AppendReq, AppendResp } from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import type * as grpc from '@grpc/grpc-js';
import type { ProposedEvent, WriteOutcome } from './eventLog.js';
import { type ExpectedRevision, expectedRevisionOf } from './expectedRevision.js';
import { proposedEventOf, streamNameOf } from './protoConvert.js';
import type { ServerContext } from './serverContext.js';
import { invalidArgumentError, type ServerError, streamDeletedError } from './serverErrors.js';

/**
 * Streams.Append (client streaming): an options message, then the proposed events; one reply. A
 * version conflict is the in-band wrong_expected_version result; a tombstoned stream is the
 * `stream-deleted` error trailer.
 */
export function handleAppend(
  context: ServerContext,
  call: grpc.ServerReadableStream<AppendReq, AppendResp>,
  callback: grpc.sendUnaryData<AppendResp>,
): void {
  context.countCall('Append');
  let done = false;
  let options: AppendReq.Options | undefined;
  const proposed: ProposedEvent[] = [];
  const untrack = context.track({ abort: (error) => reply(error) });
  const settle = () => {
    if (done) return false;
    done = true;
    untrack();
    return true;
  };
  const reply = (error: ServerError | null, response?: AppendResp) => {
    if (!settle()) return;
    if (error === null) callback(null, response);
    else callback(error);
  };

  call.on('data', (message: AppendReq) => {
    if (message.hasOptions()) options = message.getOptions();
    const event = message.getProposedMessage();
    if (event !== undefined) proposed.push(proposedEventOf(event));
  });
  // The client went away: nothing to answer.
  call.on('cancelled', settle);
  call.on('error', settle);
  call.on('end', () => {
    if (options === undefined) {
      reply(invalidArgumentError('the first AppendReq must carry options'));
      return;
    }
    const streamName = streamNameOf(options.getStreamIdentifier());
    const expected = expectedRevisionOf(options);
    const outcome = context.log.append(streamName, expected, proposed);
    if (outcome.kind === 'stream_deleted') reply(streamDeletedError(streamName));
    else reply(null, appendResponse(outcome, expected));
  });
}

function appendResponse(
  outcome: Exclude<WriteOutcome, { kind: 'stream_deleted' }>,
  expected: ExpectedRevision,
) {
  const empty = () => new sharedPb.Empty();
  if (outcome.kind === 'success') {
    const success = new streamsPb.AppendResp.Success();
    if (outcome.currentRevision === undefined) success.setNoStream(empty());
    else success.setCurrentRevision(outcome.currentRevision.toString());
    if (outcome.position === undefined) success.setNoPosition(empty());
    else {
      const position = outcome.position.toString();
      success.setPosition(
        new streamsPb.AppendResp.Position().setCommitPosition(position).setPreparePosition(position),
      );
    }
    return new streamsPb.AppendResp().setSuccess(success);
  }
  const wrong = new streamsPb.AppendResp.WrongExpectedVersion();
  // Both the current fields and the 20.6.0 ones, as the server still fills both.
  if (outcome.currentRevision === undefined) {
    wrong.setCurrentNoStream(empty()).setNoStream2060(empty());
  } else {
    wrong.setCurrentRevision(outcome.currentRevision.toString());
    wrong.setCurrentRevision2060(Number(outcome.currentRevision));
  }
  switch (expected.kind) {
    case 'any':
      wrong.setExpectedAny(empty()).setAny2060(empty());
      break;
    case 'no_stream':
      wrong.setExpectedNoStream(empty());
      break;
    case 'stream_exists':
      wrong.setExpectedStreamExists(empty()).setStreamExists2060(empty());
      break;
    case 'revision':
      wrong.setExpectedRevision(expected.revision.toString());
      wrong.setExpectedRevision2060(Number(expected.revision));
      break;
    default: {
      const unreachable: never = expected;
      throw new TypeError(`unknown expected revision ${JSON.stringify(unreachable)}`);
    }
  }
  return new streamsPb.AppendResp().setWrongExpectedVersion(wrong);
}
