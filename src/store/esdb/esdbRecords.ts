import type { RecordedEvent as EsdbRecordedEvent, Position } from '@eventstore/db-client';
import { KeyledgerError } from '../../domain/errors.js';
import type { JsonObject, RecordedEvent } from '../eventStore.js';

/**
 * Snapshots live in streams of their own, one per snapshot name. The name starts with a word and a
 * dot, which no ledger prefix can match (a prefix is `[a-z][a-z0-9_]*-`), and the adapter leaves
 * these streams out of readAll, subscribe and headPosition, as memory and sqlite keep snapshots
 * out of their event log.
 */
export const SNAPSHOT_STREAM_PREFIX = 'keyledger.snapshot.';
export const SNAPSHOT_EVENT_TYPE = 'KeyledgerSnapshot';

export function snapshotStreamOf(name: string): string {
  return `${SNAPSHOT_STREAM_PREFIX}${name}`;
}

/**
 * Streams that are not the port's events: EventStoreDB's own (`$`-prefixed: system streams,
 * metadata streams `$$…`, projections' link streams) and the adapter's snapshot streams.
 */
export function isBookkeepingStream(stream: string): boolean {
  return stream.startsWith('$') || stream.startsWith(SNAPSHOT_STREAM_PREFIX);
}

/**
 * The port's position is the commit position. For events written by ordinary appends EventStoreDB
 * gives commit == prepare (log format v2, 20.x and later), so `after` alone rebuilds a read position.
 */
export function readPositionAfter(after: bigint | undefined): Position | 'start' {
  return after === undefined || after <= 0n ? 'start' : { commit: after, prepare: after };
}

function isJsonObject(value: unknown): value is JsonObject {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  );
}

function unreadable(event: EsdbRecordedEvent, problem: string): KeyledgerError {
  return new KeyledgerError(
    'ERR_STORE',
    `event ${event.id} at ${event.streamId}@${event.revision} ${problem}`,
    { stream: event.streamId, revision: event.revision.toString(), eventId: event.id },
  );
}

export function positionOf(event: EsdbRecordedEvent): Position {
  if (event.position === undefined) throw unreadable(event, 'came without a position');
  return event.position;
}

/** What the client read, as the port's RecordedEvent; data and metadata must be JSON objects. */
export function toRecordedEvent(event: EsdbRecordedEvent): RecordedEvent {
  if (!event.isJson || !isJsonObject(event.data))
    throw unreadable(event, 'has data that is not a JSON object');
  // The client drops empty metadata (undefined); a non-JSON body stays bytes.
  const metadata = event.metadata ?? {};
  if (!isJsonObject(metadata)) throw unreadable(event, 'has metadata that is not a JSON object');
  return {
    streamName: event.streamId,
    revision: event.revision,
    position: positionOf(event).commit,
    eventId: event.id,
    type: event.type,
    data: event.data,
    metadata,
    recordedAt: event.created,
  };
}
