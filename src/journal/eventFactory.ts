import { createHash, randomUUID } from 'node:crypto';
import type { EventMetadata } from '../domain/events.js';
import { SCHEMA_VERSION } from '../domain/events.js';
import type { EventToAppend, ExpectedRevision, JsonObject } from '../store/eventStore.js';

/**
 * An event as a writer decides it: a domain event, or (the checkpointer's) one whose data is
 * completed as it is appended.
 */
export interface JournalEvent {
  readonly type: string;
  readonly data: object;
}

/** Who does an operation and why; recorded on every event it writes. */
export interface OperationContext {
  readonly actor: string;
  readonly reason: string | null;
  readonly correlationId: string;
  readonly causationId: string | null;
}

export function newCorrelationId(): string {
  return randomUUID();
}

/**
 * A UUID derived from what identifies an append (command, stream, the revision it was decided
 * against, index): retrying the same append after a lost reply writes nothing twice, while a
 * re-decision after a conflict (another expected revision) gets fresh ids.
 */
export function deterministicEventId(...parts: readonly string[]): string {
  const hex = createHash('sha256').update(parts.join('\0')).digest('hex');
  const variant = ((Number.parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function toStoredEvents(
  events: readonly JournalEvent[],
  context: OperationContext,
  stream: string,
  expected: ExpectedRevision,
  occurredAt: Date,
): EventToAppend[] {
  const metadata: EventMetadata = {
    schemaVersion: SCHEMA_VERSION,
    actor: context.actor,
    reason: context.reason,
    correlationId: context.correlationId,
    causationId: context.causationId,
    occurredAt: occurredAt.toISOString(),
  };
  return events.map((event, index) => ({
    eventId: deterministicEventId(context.correlationId, stream, String(expected), String(index)),
    type: event.type,
    data: event.data as unknown as JsonObject,
    metadata: metadata as unknown as JsonObject,
  }));
}
