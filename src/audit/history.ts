import { parseEventOf, SCOPE_EVENT_TYPES, type ScopeEvent } from '../domain/events.js';
import type { KeyScope } from '../domain/identities.js';
import type { KeyState, MarkerState } from '../domain/keyState.js';
import { emptyScopeState, evolveScope, type ScopeState } from '../domain/scopeState.js';
import type { EventStore } from '../store/eventStore.js';

export interface KeyChange {
  readonly keyId: string;
  readonly metadataHash: string;
  readonly from: KeyState | null;
  readonly to: KeyState;
}

/** One event of a scope's history: who, when, why, and what it changed. */
export interface HistoryEntry {
  readonly position: bigint;
  readonly revision: bigint;
  readonly type: ScopeEvent['type'];
  readonly occurredAt: string;
  readonly actor: string;
  readonly reason: string | null;
  readonly correlationId: string;
  readonly marker: { readonly from: MarkerState | null; readonly to: MarkerState | null } | null;
  /** Keys whose state changed. */
  readonly keys: readonly KeyChange[];
  /** The key an event is about, when it is about one (a refresh that changed nothing still names it). */
  readonly subject: { readonly keyId: string; readonly metadataHash: string } | null;
}

/** The history of a scope, from its stream, each entry with the state change it made. */
export async function scopeHistory(
  store: EventStore,
  stream: string,
  scope: KeyScope,
): Promise<HistoryEntry[]> {
  let state = emptyScopeState(scope);
  const entries: HistoryEntry[] = [];
  for (const recorded of await store.readStream(stream)) {
    const scopeEvent = parseEventOf(recorded, SCOPE_EVENT_TYPES);
    const event = scopeEvent;
    const next = evolveScope(state, scopeEvent, event.meta.occurredAt, event.revision);
    entries.push({
      position: event.position,
      revision: event.revision,
      type: scopeEvent.type,
      occurredAt: event.meta.occurredAt,
      actor: event.meta.actor,
      reason: event.meta.reason,
      correlationId: event.meta.correlationId,
      marker: state.marker === next.marker ? null : { from: state.marker, to: next.marker },
      keys: keyChanges(state, next),
      subject: subjectOf(scopeEvent, next),
    });
    state = next;
  }
  return entries;
}

function keyChanges(before: ScopeState, after: ScopeState): KeyChange[] {
  const changes: KeyChange[] = [];
  for (const key of after.keys.values()) {
    const from = before.keys.get(key.keyId)?.state ?? null;
    if (from !== key.state)
      changes.push({ keyId: key.keyId, metadataHash: key.metadataHash, from, to: key.state });
  }
  return changes;
}

function subjectOf(event: ScopeEvent, state: ScopeState): HistoryEntry['subject'] {
  const keyId = 'key' in event.data ? event.data.key.keyId : 'keyId' in event.data ? event.data.keyId : null;
  const key = keyId === null ? undefined : state.keys.get(keyId);
  return key === undefined ? null : { keyId: key.keyId, metadataHash: key.metadataHash };
}
