import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import type { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import {
  type AnyOperation,
  type OperationName,
  type OperationOf,
  type OutputOf,
  operationNamed,
} from './operations.js';
import { invalidArgument } from './queryOperations.js';

function invalidArgumentWith(message: string, details: Record<string, number>): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, details);
}

/**
 * The operations of the table as one programming interface, with two implementations: in process
 * over a `Ledger` (LedgerApi, src/operations/ledgerApi.ts) and over the HTTPS API (KeyledgerClient,
 * src/client). An application switches between embedded and remote by configuration; one contract
 * suite (test/contract/keyledgerApi.contract.ts) holds both to the same behaviour and error codes.
 */

/**
 * Operations that work on the caller's local files: they have no HTTP route (docs/api.md), so the
 * API offers them to neither implementation. The CLI runs them itself.
 */
export const LOCAL_ONLY_OPERATIONS = ['init', 'verify-export', 'audit-export-file'] as const;
export type LocalOnlyName = (typeof LOCAL_ONLY_OPERATIONS)[number];

export function isLocalOnly(name: string): name is LocalOnlyName {
  return (LOCAL_ONLY_OPERATIONS as readonly string[]).includes(name);
}

/**
 * The operations streaming bytes in and out, with a JSON result. Named here because an operation's
 * `kind` is not a literal type; test/operations/keyledgerApiNames.test.ts checks these against the table.
 */
export const BYTES_OPERATIONS = ['encrypt', 'decrypt', 'audit-export', 'reencrypt'] as const;
export type BytesName = (typeof BYTES_OPERATIONS)[number];
/** The operations answering a stream of events (events$). */
export const EVENTS_OPERATIONS = ['watch'] as const;
/** The operations answering one JSON value, as `call` takes them. */
export type UnaryName = Exclude<
  OperationName,
  BytesName | (typeof EVENTS_OPERATIONS)[number] | LocalOnlyName
>;

/** An operation's input as a caller writes it (optional fields may be left out). */
export type InputOf<N extends OperationName> = z.input<OperationOf<N>['input']>;

/** One event of `events$` (the `watch` operation's item). */
export type WatchItem = OutputOf<'watch'>;

export interface CallOptions {
  /** Why; recorded as the reason of the events the call writes. */
  readonly reason?: string;
  /**
   * Ties the events the call writes together and to the caller's own logs: their correlation id
   * (remotely the `X-Request-Id`: 1 to 128 visible ASCII characters). Default: a new one per call.
   */
  readonly requestId?: string;
}

/** A bytes operation run on bytes held in memory. */
export interface BytesResult<N extends BytesName> {
  readonly result: OutputOf<N>;
  readonly data: Buffer;
}

/**
 * A bytes operation in flight: write the input to `stream` (and end it), read the output from it.
 * Memory stays constant whatever the size. `result` settles when the operation has finished: the
 * output read is complete and valid only once it resolves (a failure after the first output byte
 * destroys the stream with the error and rejects `result` with it).
 */
export interface ByteTransfer<N extends BytesName> {
  readonly stream: Duplex;
  readonly result: Promise<OutputOf<N>>;
}

export interface KeyledgerApi {
  /** Runs a unary operation: the input is checked by the operation's schema, the result is plain JSON. */
  call<N extends UnaryName>(name: N, input: InputOf<N>, options?: CallOptions): Promise<OutputOf<N>>;
  /** Encrypts bytes held in memory (for small payloads; see encryptStream). */
  encrypt(
    input: InputOf<'encrypt'>,
    data: Uint8Array,
    options?: CallOptions,
  ): Promise<BytesResult<'encrypt'>>;
  /** Decrypts bytes held in memory; any failure is ERR_DECRYPTION_FAILED. */
  decrypt(
    input: InputOf<'decrypt'>,
    data: Uint8Array,
    options?: CallOptions,
  ): Promise<BytesResult<'decrypt'>>;
  encryptStream(input: InputOf<'encrypt'>, options?: CallOptions): ByteTransfer<'encrypt'>;
  decryptStream(input: InputOf<'decrypt'>, options?: CallOptions): ByteTransfer<'decrypt'>;
  /** Any bytes operation, streamed (encryptStream and decryptStream are this with a name). */
  stream<N extends BytesName>(name: N, input: InputOf<N>, options?: CallOptions): ByteTransfer<N>;
  /**
   * The ledger's events as they happen (the `watch` operation's filter). Subscribing starts the work;
   * unsubscribing stops it. A remote one resumes after a dropped connection without a gap or a duplicate.
   */
  events$(filter?: InputOf<'watch'>): Observable<WatchItem>;
  /** Releases what the implementation holds (connections); the in-process one leaves the ledger open. */
  close(): Promise<void>;
}

/** The named operation, if it is of `kind` and served by the API (a JS caller may pass anything). */
export function operationOfKind(name: string, kind: AnyOperation['kind']): AnyOperation {
  const operation = operationNamed(name);
  if (operation === undefined || operation.kind !== kind) {
    throw invalidArgument(`${String(name).slice(0, 64)} is not a ${kind} operation`);
  }
  if (isLocalOnly(operation.name)) {
    throw invalidArgument(`${operation.name} works on local files; run it with the CLI`);
  }
  return operation;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** A request id as both implementations take it (the server's X-Request-Id rule), else ERR_INVALID_ARGUMENT. */
export function checkRequestId(requestId: string | undefined): string | undefined {
  if (requestId !== undefined && !REQUEST_ID.test(requestId)) {
    throw invalidArgumentWith('a request id takes 1 to 128 visible ASCII characters', {
      requestId: requestId.length,
    });
  }
  return requestId;
}
