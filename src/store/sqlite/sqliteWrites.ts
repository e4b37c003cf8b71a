import type Database from 'better-sqlite3';
import {
  ABSENT_STREAM,
  checkExpected,
  classifyBatch,
  nextRevision,
  type StreamState,
  type WrittenEvent,
} from '../adapterSupport.js';
import type { AppendResult, ExpectedRevision } from '../eventStore.js';
import type { SqliteStatements } from './sqliteStatements.js';

/** An event to append with its data and metadata already JSON text. */
export interface EncodedEvent {
  readonly eventId: string;
  readonly type: string;
  readonly data: string;
  readonly metadata: string;
}

/** One append of a group (appendGroup): the request, and what became of it. */
export interface AppendRequest {
  readonly stream: string;
  readonly events: readonly EncodedEvent[];
  readonly expected: ExpectedRevision;
  outcome?: AppendOutcome;
  error?: unknown;
}

export interface AppendOutcome {
  readonly result: AppendResult;
  /** False for a retry answered from the events already written. */
  readonly wrote: boolean;
}

/**
 * The sqlite store's writes to the event log, each one transaction under the write lock: IMMEDIATE
 * takes the lock before the checks, so no other process can write between the expected-revision
 * check and the insert.
 */
export class SqliteWrites {
  readonly #statements: SqliteStatements;
  readonly #appendTransaction: Database.Transaction<
    (stream: string, events: readonly EncodedEvent[], expected: ExpectedRevision) => AppendOutcome
  >;
  readonly #deleteTransaction: Database.Transaction<(stream: string) => boolean>;
  readonly #groupTransaction: Database.Transaction<(group: readonly AppendRequest[]) => void>;

  constructor(db: Database.Database, statements: SqliteStatements) {
    this.#statements = statements;
    this.#appendTransaction = db.transaction(this.#appendInTransaction);
    this.#deleteTransaction = db.transaction(this.#deleteInTransaction);
    this.#groupTransaction = db.transaction((group: readonly AppendRequest[]) => {
      for (const request of group) {
        try {
          // Nested: a savepoint. A refused append (a conflict) rolls back its own events only.
          request.outcome = this.#appendTransaction(request.stream, request.events, request.expected);
        } catch (error) {
          request.error = error;
        }
      }
    });
  }

  /**
   * Group commit: several appends (to any streams) in one IMMEDIATE transaction, so one fsync
   * (synchronous = FULL) covers them all. Each append is checked and written as if alone, in the
   * order given, and fails or succeeds alone; its `outcome` or `error` is set. Throws only when the
   * transaction itself fails (then none was written).
   */
  appendGroup(group: readonly AppendRequest[]): void {
    this.#groupTransaction.immediate(group);
  }

  append(stream: string, events: readonly EncodedEvent[], expected: ExpectedRevision): AppendOutcome {
    return this.#appendTransaction.immediate(stream, events, expected);
  }

  /** Deletes the stream's events; false when it does not exist (absent, or deleted already). */
  deleteStream(stream: string): boolean {
    return this.#deleteTransaction.immediate(stream);
  }

  readonly #appendInTransaction = (
    stream: string,
    events: readonly EncodedEvent[],
    expected: ExpectedRevision,
  ): AppendOutcome => {
    const state = this.#readStreamState(stream);
    const written = events.map((event): WrittenEvent | undefined => {
      const row = this.#statements.findEvent.get(event.eventId);
      return row === undefined ? undefined : { streamName: row[0], revision: row[1], position: row[2] };
    });
    const retried = classifyBatch(stream, expected, state, written);
    if (retried !== null) return { result: retried, wrote: false };
    checkExpected(stream, expected, state);
    const recordedAt = Date.now();
    let revision = nextRevision(state) - 1n;
    let position = 0n;
    for (const event of events) {
      revision += 1n;
      const { lastInsertRowid } = this.#statements.insertEvent.run(
        stream,
        revision,
        event.eventId,
        event.type,
        event.data,
        event.metadata,
        recordedAt,
      );
      position = BigInt(lastInsertRowid);
    }
    this.#statements.upsertStream.run(stream, revision);
    return { result: { nextExpectedRevision: revision, position }, wrote: true };
  };

  readonly #deleteInTransaction = (stream: string): boolean => {
    const state = this.#readStreamState(stream);
    if (!state.exists) return false;
    this.#statements.deleteEvents.run(stream);
    this.#statements.markDeleted.run(stream);
    return true;
  };

  #readStreamState(stream: string): StreamState {
    const row = this.#statements.streamState.get(stream);
    if (row === undefined) return ABSENT_STREAM;
    return { exists: row[1] === 0n, lastRevision: row[0] };
  }
}
