import type { AppendExpectedRevision, jsonEvent } from '@eventstore/db-client';
import { KeyledgerError, VersionConflictError } from '../../domain/errors.js';
import { assertNever, describeExpected, toJsonText, validateBatch } from '../adapterSupport.js';
import type { AppendResult, EventToAppend, ExpectedRevision, RecordedEvent } from '../eventStore.js';
import type { EsdbCalls } from './esdbCalls.js';
import { esdbClient } from './esdbClient.js';
import { conflictFrom } from './esdbErrors.js';
import type { RecentWrites } from './recentWrites.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function toClientExpected(expected: ExpectedRevision): AppendExpectedRevision {
  if (typeof expected === 'bigint') {
    if (expected < 0n) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'an expected revision cannot be negative', {
        expected: expected.toString(),
      });
    }
    return expected;
  }
  switch (expected) {
    case 'any':
    case 'no_stream':
    case 'stream_exists':
      return expected;
    default:
      return assertNever(expected, 'expected revision');
  }
}

/**
 * The esdb adapter's append path: a batch validated before anything is sent, then appended with
 * the port's answers where the server's differ (a deleted stream, a retry at another revision;
 * see `#lookBeforeAppend`).
 */
export class EsdbAppender {
  readonly #calls: EsdbCalls;
  readonly #recent: RecentWrites;

  /** `recent`: shared with deleteStream, which notes the streams it deletes there. */
  constructor(calls: EsdbCalls, recent: RecentWrites) {
    this.#calls = calls;
    this.#recent = recent;
  }

  async append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    this.#calls.assertOpen();
    validateBatch(stream, events);
    toClientExpected(expected);
    for (const event of events) {
      if (!UUID.test(event.eventId)) {
        throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'event id must be a UUID', {
          stream,
          eventId: event.eventId,
        });
      }
      // Checked here so that an unstorable batch fails before anything is sent.
      toJsonText(event.data, 'event data');
      toJsonText(event.metadata, 'event metadata');
    }
    const proposed = events.map((event) =>
      esdbClient().jsonEvent({
        id: event.eventId,
        type: event.type,
        data: event.data as Record<string, unknown>,
        metadata: event.metadata as Record<string, unknown>,
      }),
    );
    return this.#calls.call('append', () => this.#appendOnce(stream, events, proposed, expected));
  }

  async #appendOnce(
    stream: string,
    events: readonly EventToAppend[],
    proposed: readonly ReturnType<typeof jsonEvent>[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    // Only an exact revision can need a look first (see RecentWrites); for the other forms the
    // server's answer, or its conflict looked into below, is already the port's.
    const ids = events.map((event) => event.eventId.toLowerCase());
    if (typeof expected === 'bigint' && this.#recent.needsLook(stream, ids)) {
      const found = await this.#lookBeforeAppend(stream, events, expected);
      if (found !== null) return found;
    }
    this.#recent.noteAttempt(stream, ids);
    try {
      const result = await this.#calls.client.appendToStream(stream, [...proposed], {
        expectedRevision: toClientExpected(expected),
      });
      if (!result.success) {
        // Only with throwOnAppendFailure=false in the connection string.
        throw new VersionConflictError(
          stream,
          describeExpected(expected),
          String(result.nextExpectedRevision),
        );
      }
      this.#recent.noteWritten(stream);
      const position =
        result.position?.commit ?? (await this.#positionOf(stream, result.nextExpectedRevision));
      return { nextExpectedRevision: result.nextExpectedRevision, position };
    } catch (error) {
      if (error instanceof esdbClient().WrongExpectedVersionError) {
        // The first attempt of this very batch may have landed since the look above.
        const late = await this.#lookBeforeAppend(stream, events, expected);
        if (late !== null) return late;
        throw conflictFrom(error, stream, expected);
      }
      if (error instanceof esdbClient().StreamDeletedError && (await this.#isSoftDeleted(stream))) {
        // Deleted (softly) since the look above: for the port that is an absent stream.
        throw new VersionConflictError(stream, describeExpected(expected), 'no_stream', { cause: error });
      }
      throw error;
    }
  }

  /**
   * What the server does not decide the port's way, decided from the stream's last events. Before
   * an append at an exact revision that RecentWrites flags: (1) a deleted stream has no events, yet
   * EventStoreDB accepts its old last revision (and recreates it); the port calls that a conflict.
   * (2) The server recognises a retry only at the expected revision of its first attempt, so a
   * batch that already forms the stream's last events is answered from them, whatever the
   * revision. After a conflict, whatever the form: the batch may be such a retry, or partly
   * written already (a retry that grew), which stays a conflict. ANY, NO_STREAM and STREAM_EXISTS
   * retries the server recognises by itself (by event id). A delete racing with the look, and
   * what other processes sent or deleted, are left to the server.
   */
  async #lookBeforeAppend(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult | null> {
    let tail: RecordedEvent[];
    try {
      tail = await this.#calls.readFully(
        this.#calls.client.readStream(stream, {
          direction: esdbClient().BACKWARDS,
          fromRevision: esdbClient().END,
          maxCount: events.length,
        }),
      );
    } catch (error) {
      // Absent or softly deleted; a tombstoned stream (StreamDeletedError) is refused below, as ERR_STORE.
      if (!(error instanceof esdbClient().StreamNotFoundError)) throw error;
      if (typeof expected === 'bigint' || expected === 'stream_exists') {
        throw new VersionConflictError(stream, describeExpected(expected), 'no_stream', { cause: error });
      }
      return null;
    }
    tail.reverse();
    const ids = events.map((event) => event.eventId.toLowerCase());
    const written = tail.map((event) => event.eventId.toLowerCase());
    const last = tail[tail.length - 1];
    if (last !== undefined && written.length === ids.length && written.every((id, i) => id === ids[i])) {
      return { nextExpectedRevision: last.revision, position: last.position };
    }
    const batch = new Set(ids);
    if (written.some((id) => batch.has(id))) {
      throw new VersionConflictError(
        stream,
        describeExpected(expected),
        `${last?.revision.toString() ?? 'no_stream'}, with some of these event ids written already`,
      );
    }
    return null;
  }

  async #isSoftDeleted(stream: string): Promise<boolean> {
    try {
      await this.#calls.readRaw(this.#calls.client.readStream(stream, { maxCount: 1 }));
      return false;
    } catch (error) {
      return error instanceof esdbClient().StreamNotFoundError;
    }
  }

  async #positionOf(stream: string, revision: bigint): Promise<bigint> {
    const [event] = await this.#calls.readFully(
      this.#calls.client.readStream(stream, { fromRevision: revision, maxCount: 1 }),
    );
    if (event !== undefined) return event.position;
    throw new KeyledgerError('ERR_STORE', `EventStoreDB at ${this.#calls.url} lost the event it just wrote`, {
      stream,
      revision: revision.toString(),
    });
  }
}
