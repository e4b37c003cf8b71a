import { KeyledgerError } from '../domain/errors.js';
import { type LedgerEvent, parseEventOf, SCOPE_EVENT_TYPES, type ScopeEvent } from '../domain/events.js';
import { formatScope, type KeyId, type KeyScope, parseMetadataHash } from '../domain/identities.js';
import { keyIdOf } from '../domain/keyDigests.js';
import type { KeyState, MarkerState } from '../domain/keyState.js';
import { emptyScopeState, evolveScope, type ScopeState } from '../domain/scopeState.js';
import type { EventStore } from '../store/eventStore.js';

export interface KeyChange {
  readonly keyId: string;
  readonly metadataHash: string;
  readonly from: KeyState | null;
  readonly to: KeyState;
}

/**
 * One event of a scope's (or a key's) history: who, when, why, and what it changed. Plain data, so
 * `JSON.stringify` works on it: the global position and the stream revision are decimal strings
 * (compare them as `BigInt(position)`).
 */
export interface HistoryEntry {
  readonly position: string;
  readonly revision: string;
  readonly type: ScopeEvent['type'] | 'KeyMaterialWrapped';
  readonly occurredAt: string;
  readonly actor: string;
  readonly reason: string | null;
  readonly correlationId: string;
  readonly marker: { readonly from: MarkerState | null; readonly to: MarkerState | null } | null;
  /** Keys whose state changed. */
  readonly keys: readonly KeyChange[];
  /** The key an event is about, when it is about one (a refresh that changed nothing still names it). */
  readonly subject: { readonly keyId: string; readonly metadataHash: string } | null;
  /**
   * Key histories only: a (re)wrap of the key's material, with the system key it is now wrapped
   * under. Never the wrapped bytes: the history outlives a destruction of the material.
   */
  readonly material: { readonly stkIdentity: string } | null;
}

/** Where a scope's and a key's events live (the ledger's StreamNames). */
export interface HistoryStreams {
  scope(scope: KeyScope): string;
  material(keyId: KeyId): string;
}

/** ERR_SCOPE_NOT_FOUND: the ledger has never recorded anything for `scope`. */
export function scopeNotFound(scope: KeyScope): KeyledgerError {
  return new KeyledgerError(
    'ERR_SCOPE_NOT_FOUND',
    `the ledger has no events for scope ${formatScope(scope)}`,
    { scope: formatScope(scope) },
  );
}

/**
 * The history of a scope, from its stream, each entry with the state change it made. A scope the
 * ledger has never recorded anything for is ERR_SCOPE_NOT_FOUND (rather than an empty history, which
 * would read the same as a mistyped custodian).
 */
export async function scopeHistory(
  store: EventStore,
  streams: Pick<HistoryStreams, 'scope'>,
  scope: KeyScope,
): Promise<HistoryEntry[]> {
  let state = emptyScopeState(scope);
  const entries: HistoryEntry[] = [];
  for (const recorded of await store.readStream(streams.scope(scope))) {
    const event = parseEventOf(recorded, SCOPE_EVENT_TYPES);
    const next = evolveScope(state, event, event.meta.occurredAt, event.revision);
    entries.push({
      ...recordOf(event),
      marker: state.marker === next.marker ? null : { from: state.marker, to: next.marker },
      keys: keyChanges(state, next),
      subject: subjectOf(event, next),
      material: null,
    });
    state = next;
  }
  if (entries.length === 0) throw scopeNotFound(scope);
  return entries;
}

/**
 * The history of one key of a scope, named by its metadata hash: the scope events that changed it
 * or are about it, and the (re)wraps of its material, in position order. A malformed hash is
 * ERR_INVALID_METADATA; a scope without events ERR_SCOPE_NOT_FOUND; a key the scope never had
 * ERR_KEY_NOT_FOUND.
 */
export async function keyHistory(
  store: EventStore,
  streams: HistoryStreams,
  scope: KeyScope,
  metadataHash: string,
): Promise<HistoryEntry[]> {
  const hash = parseMetadataHash(metadataHash);
  const keyId = keyIdOf(scope, hash);
  const lifecycle = (await scopeHistory(store, streams, scope)).filter(
    (e) => e.subject?.keyId === keyId || e.keys.some((k) => k.keyId === keyId),
  );
  if (lifecycle.length === 0) {
    throw new KeyledgerError('ERR_KEY_NOT_FOUND', `key ${hash} not found in scope ${formatScope(scope)}`, {
      scope: formatScope(scope),
      metadataHash: hash,
    });
  }
  const materials: HistoryEntry[] = [];
  for (const recorded of await store.readStream(streams.material(keyId))) {
    const event = parseEventOf(recorded, ['KeyMaterialWrapped']);
    // A material stream holds one key's material; anything else there is not this key's history.
    if (event.data.keyId !== keyId) continue;
    materials.push({
      ...recordOf(event),
      marker: null,
      keys: [],
      subject: { keyId, metadataHash: hash },
      material: { stkIdentity: event.data.stkIdentity },
    });
  }
  return [...lifecycle, ...materials].sort((a, b) => {
    const x = BigInt(a.position);
    const y = BigInt(b.position);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Where and when an event stands, and who wrote it why: what every history entry starts with. */
function recordOf<E extends LedgerEvent & { readonly type: HistoryEntry['type'] }>(event: E) {
  return {
    position: event.position.toString(),
    revision: event.revision.toString(),
    type: event.type,
    occurredAt: event.meta.occurredAt,
    actor: event.meta.actor,
    reason: event.meta.reason,
    correlationId: event.meta.correlationId,
  } as const;
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
