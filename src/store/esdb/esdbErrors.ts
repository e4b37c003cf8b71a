import type { WrongExpectedVersionError } from '@eventstore/db-client';
import { KeyledgerError, VersionConflictError } from '../../domain/errors.js';
import { describeExpected } from '../adapterSupport.js';
import type { ExpectedRevision } from '../eventStore.js';
import { esdbClient } from './esdbClient.js';

// gRPC status codes (grpc-js `status`), for errors the client passes through unconverted.
const GRPC_CANCELLED = 1;
const GRPC_ABORTED = 10;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Whether a failure says "the server could not be reached right now" (worth trying again), as
 * opposed to an answer (a conflict, a refusal, a bad request). A server that is down, restarting,
 * not the leader (the client has already switched to the leader it names), or that ended the call
 * while shutting down all count; so does a cluster whose members could not be discovered.
 */
export function isTransient(error: unknown): boolean {
  if (
    error instanceof esdbClient().UnavailableError ||
    error instanceof esdbClient().NotLeaderError ||
    error instanceof esdbClient().DeadlineExceededError ||
    error instanceof esdbClient().CancelledError ||
    // ABORTED: the server timed out committing (e.g. waiting for a quorum); appends are idempotent.
    error instanceof esdbClient().TimeoutError
  ) {
    return true;
  }
  const code = grpcCode(error);
  if (
    code === GRPC_UNAVAILABLE ||
    code === GRPC_DEADLINE_EXCEEDED ||
    code === GRPC_CANCELLED ||
    code === GRPC_ABORTED
  ) {
    return true;
  }
  // The client's gossip discovery gives up with a plain Error and no code; its message is the only sign.
  return error instanceof Error && error.message.startsWith('Failed to discover after');
}

/** A short, credential-free reason taken from a gRPC failure, for the message. */
function reasonOf(error: unknown): string {
  const details = (error as { details?: unknown } | null)?.details;
  const raw = (error as { _raw?: { details?: unknown } } | null)?._raw?.details;
  const message = error instanceof Error ? error.message : '';
  const reason = [details, raw, message].find(
    (text): text is string => typeof text === 'string' && text !== '',
  );
  // grpc-js ends connection failures with an empty "Resolution note:".
  return reason?.replace(/\s*Resolution note:\s*$/, '') ?? 'no reason given';
}

export function unavailableError(
  url: string,
  operation: string,
  waitedMs: number,
  cause: unknown,
): KeyledgerError {
  return new KeyledgerError(
    'ERR_STORE_UNAVAILABLE',
    `EventStoreDB at ${url} is unavailable (${operation}, gave up after ${waitedMs} ms): ${reasonOf(cause)}`,
    { url, operation, waitedMs },
    { cause },
  );
}

function describeActual(actual: bigint | 'no_stream' | string): string {
  return typeof actual === 'bigint' ? actual.toString() : actual;
}

/** The client's WrongExpectedVersionError as the port's VersionConflictError. */
export function conflictFrom(
  error: WrongExpectedVersionError,
  stream: string,
  expected: ExpectedRevision,
): VersionConflictError {
  return new VersionConflictError(stream, describeExpected(expected), describeActual(error.actualVersion), {
    cause: error,
  });
}

/**
 * Converts what the client threw into the ledger's errors, keeping it as `cause`. Our own errors
 * pass through. Transient failures that outlived the retry budget are ERR_STORE_UNAVAILABLE; every
 * other failure is ERR_STORE. Messages name the server by its redacted URL.
 */
export function toStoreError(error: unknown, url: string, operation: string, waitedMs = 0): KeyledgerError {
  if (error instanceof KeyledgerError) return error;
  if (isTransient(error)) return unavailableError(url, operation, waitedMs, error);
  if (error instanceof esdbClient().AccessDeniedError) {
    return new KeyledgerError(
      'ERR_STORE',
      `EventStoreDB at ${url} denied ${operation}: the store user lacks a permission (see the stream ACLs in docs/operations.md)`,
      { url, operation, reason: 'access-denied' },
      { cause: error },
    );
  }
  if (error instanceof esdbClient().StreamDeletedError) {
    return new KeyledgerError(
      'ERR_STORE',
      `EventStoreDB at ${url} refused ${operation}: stream ${error.streamName} was tombstoned (hard-deleted) and can never be written again`,
      { url, operation, reason: 'stream-deleted', stream: error.streamName },
      { cause: error },
    );
  }
  return new KeyledgerError(
    'ERR_STORE',
    `event store ${operation} failed on EventStoreDB at ${url}: ${reasonOf(error)}`,
    { url, operation },
    { cause: error },
  );
}

/** The stream is absent, or (softly or for good) deleted: for reads and deletes, nothing there. */
export function isMissingStream(error: unknown): boolean {
  return (
    error instanceof esdbClient().StreamNotFoundError || error instanceof esdbClient().StreamDeletedError
  );
}
