import * as grpc from '@grpc/grpc-js';
import { type ExpectedRevision, expectedVersionCode } from './expectedRevision.js';

/**
 * gRPC errors as EventStoreDB raises them: a status code plus trailers whose `exception` entry names
 * the error (the client's convertToCommandError switches on it) and whose other entries carry its
 * fields. Handlers pass these to a unary callback or emit them on a stream.
 */

export type ServerError = Partial<grpc.StatusObject> & { code: grpc.status; details: string };

function serverError(
  code: grpc.status,
  details: string,
  trailers: Readonly<Record<string, string>>,
): ServerError {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return { code, details, metadata };
}

export function streamDeletedError(streamName: string): ServerError {
  return serverError(grpc.status.FAILED_PRECONDITION, `Event stream '${streamName}' is deleted.`, {
    exception: 'stream-deleted',
    'stream-name': streamName,
  });
}

export function streamNotFoundError(streamName: string): ServerError {
  return serverError(grpc.status.NOT_FOUND, `Event stream '${streamName}' is not found.`, {
    exception: 'stream-not-found',
    'stream-name': streamName,
  });
}

/** `actual-version` is -1 for a stream that does not exist, as the server writes it. */
export function wrongExpectedVersionError(
  streamName: string,
  expected: ExpectedRevision,
  currentRevision: bigint | undefined,
): ServerError {
  const expectedVersion = expectedVersionCode(expected).toString();
  const actualVersion = (currentRevision ?? -1n).toString();
  return serverError(
    grpc.status.FAILED_PRECONDITION,
    `Operation failed due to WrongExpectedVersion. Stream: ${streamName}, Expected version: ${expectedVersion}, Actual version: ${actualVersion}`,
    {
      exception: 'wrong-expected-version',
      'stream-name': streamName,
      'expected-version': expectedVersion,
      'actual-version': actualVersion,
    },
  );
}

/** What every open call gets when the node goes down (stop()). */
export function serverUnavailableError(): ServerError {
  return { code: grpc.status.UNAVAILABLE, details: 'Server is shutting down.' };
}

export function invalidArgumentError(details: string): ServerError {
  return { code: grpc.status.INVALID_ARGUMENT, details };
}
