import type { KeyRecord } from './eventFields.js';
import type { ScopeEvent } from './events.js';
import type { KeyId, KeyScope, MetadataHash } from './identities.js';
import { keyIdOf } from './keyDigests.js';
import type { KeyState, MarkerState } from './keyState.js';
import { PersistentOrderedMap } from './persistentOrderedMap.js';

/** A key of a scope as the ledger knows it. Metadata, hashes and state: never key bytes. */
export interface ManagedKey extends KeyRecord {
  readonly state: KeyState;
  readonly createdAt: string;
  readonly refreshedAt: string;
  readonly updatedAt: string;
  /** A scheduled destruction (crypto-shredding), until it runs or is cancelled; else null. */
  readonly destruction: PendingDestruction | null;
}

export interface PendingDestruction {
  /** When it was scheduled (the event's time) and when it falls due. ISO 8601, UTC. */
  readonly scheduledAt: string;
  readonly dueAt: string;
}

/** Everything the decider needs to know about one scope: the fold of its stream. */
export interface ScopeState {
  readonly scope: KeyScope;
  readonly marker: MarkerState | null;
  /**
   * In the order the keys entered the ledger. `evolveScope` makes it a `PersistentOrderedMap`
   * (versions share structure); a state restored from a snapshot may hold a plain Map.
   */
  readonly keys: ReadonlyMap<KeyId, ManagedKey>;
  readonly activeKeyId: KeyId | null;
  /**
   * The ACTIVE key a refresh demoted because the provider said INACTIVE, while nothing else has
   * happened in the scope since: the one key a later refresh may make ACTIVE again.
   */
  readonly providerDemotedKeyId: KeyId | null;
  /** Revision of the last event folded in; null for a scope that has none. */
  readonly revision: bigint | null;
}

/** A key as it enters a scope: its record, in `state`, created, refreshed and updated `at`. */
export function newKey(record: KeyRecord, state: 'ACTIVE' | 'INACTIVE', at: string): ManagedKey {
  return {
    keyId: record.keyId,
    metadata: record.metadata,
    metadataHash: record.metadataHash,
    checksum: record.checksum,
    stkIdentity: record.stkIdentity,
    state,
    createdAt: at,
    refreshedAt: at,
    updatedAt: at,
    destruction: null,
  };
}

export function emptyScopeState(scope: KeyScope): ScopeState {
  return {
    scope,
    marker: null,
    // Its own empty map, not a shared one: the versions of a map share their order log.
    keys: PersistentOrderedMap.empty(),
    activeKeyId: null,
    providerDemotedKeyId: null,
    revision: null,
  };
}

export function activeKey(state: ScopeState): ManagedKey | null {
  return state.activeKeyId === null ? null : (state.keys.get(state.activeKeyId) ?? null);
}

export function findKeyByHash(state: ScopeState, hash: MetadataHash): ManagedKey | null {
  return state.keys.get(keyIdOf(state.scope, hash)) ?? null;
}

/** A copy of `key` with the fields a fold changes; the rest (the key record, createdAt) kept. */
export function changedKey(
  key: ManagedKey,
  state: KeyState,
  refreshedAt: string,
  updatedAt: string,
  destruction: PendingDestruction | null,
  stkIdentity: string = key.stkIdentity,
): ManagedKey {
  // Written out rather than spread: every ManagedKey then has the same shape, which keeps the
  // fold's property reads monomorphic during a replay of millions of events.
  return {
    keyId: key.keyId,
    metadata: key.metadata,
    metadataHash: key.metadataHash,
    checksum: key.checksum,
    stkIdentity,
    state,
    createdAt: key.createdAt,
    refreshedAt,
    updatedAt,
    destruction,
  };
}

/**
 * The keys with `key` put in. The state's own map is never changed: earlier states stay as they
 * were, and share all but a path of the new version's structure (O(log n) garbage per change, not
 * a copy of every key of the scope).
 */
function withKey(
  keys: ReadonlyMap<KeyId, ManagedKey>,
  key: ManagedKey,
): PersistentOrderedMap<KeyId, ManagedKey> {
  return PersistentOrderedMap.from(keys).with(key.keyId, key);
}

/** The keys with `keyId` in `state` (unchanged when it is unknown or already there). */
function setState(
  keys: ReadonlyMap<KeyId, ManagedKey>,
  keyId: KeyId,
  state: KeyState,
  at: string,
): ReadonlyMap<KeyId, ManagedKey> {
  const key = keys.get(keyId);
  if (key === undefined || key.state === state) return keys;
  return withKey(keys, changedKey(key, state, key.refreshedAt, at, key.destruction));
}

/** The keys with `keyId`'s pending destruction replaced (unchanged when the key is unknown). */
function setDestruction(
  keys: ReadonlyMap<KeyId, ManagedKey>,
  keyId: KeyId,
  destruction: PendingDestruction | null,
): ReadonlyMap<KeyId, ManagedKey> {
  const key = keys.get(keyId);
  if (key === undefined) return keys;
  return withKey(keys, changedKey(key, key.state, key.refreshedAt, key.updatedAt, destruction));
}

/** The keys with `record` ACTIVE (new or known) and the previous ACTIVE key demoted to INACTIVE. */
function activate(
  keys: ReadonlyMap<KeyId, ManagedKey>,
  activeKeyId: KeyId | null,
  record: KeyRecord,
  at: string,
): PersistentOrderedMap<KeyId, ManagedKey> {
  let next = PersistentOrderedMap.from(keys);
  const previous = activeKeyId === null ? undefined : next.get(activeKeyId);
  if (previous !== undefined && previous.keyId !== record.keyId && previous.state !== 'INACTIVE') {
    next = next.with(
      previous.keyId,
      changedKey(previous, 'INACTIVE', previous.refreshedAt, at, previous.destruction),
    );
  }
  const known = next.get(record.keyId);
  return next.with(
    record.keyId,
    known === undefined
      ? newKey(record, 'ACTIVE', at)
      : changedKey(known, 'ACTIVE', at, at, known.destruction),
  );
}

/**
 * Folds one scope event into the scope's state. Pure; `at` is the event's occurredAt and
 * `revision` its stream revision. Events were validated against the decider when written, so this
 * applies them as facts.
 *
 * It allocates one new state per event and, when a key changes, a new version of the key map that
 * shares all but one path with the old one: the live path runs this per event in every ledger of
 * a process, and a replay for most of a ledger's events.
 */
export function evolveScope(state: ScopeState, event: ScopeEvent, at: string, revision: bigint): ScopeState {
  let { marker, keys, activeKeyId } = state;
  switch (event.type) {
    case 'KeyManagementEnabled':
    case 'ManagedKeyRotated':
    case 'ManagedKeySet': {
      const record = event.data.key;
      keys = activate(keys, activeKeyId, record, at);
      marker = 'ACTIVE';
      activeKeyId = record.keyId;
      break;
    }
    case 'ManagedKeyImported': {
      const record = event.data.key;
      if (event.data.state === 'ACTIVE') {
        keys = activate(keys, activeKeyId, record, at);
        marker = 'ACTIVE';
        activeKeyId = record.keyId;
      } else if (!keys.has(record.keyId)) {
        keys = withKey(keys, newKey(record, 'INACTIVE', at));
      }
      break;
    }
    case 'KeyManagementEnableFailed':
      marker = event.data.marker;
      break;
    case 'KeyManagementDisabled':
      for (const id of event.data.deactivatedKeyIds) keys = setState(keys, id, 'INACTIVE', at);
      marker = 'DISABLED';
      activeKeyId = null;
      break;
    case 'ManagedKeyDisabled':
      keys = setState(keys, event.data.keyId, 'DISABLED', at);
      if (activeKeyId === event.data.keyId) activeKeyId = null;
      break;
    case 'ManagedKeyReenabled':
      keys = setState(keys, event.data.keyId, 'INACTIVE', at);
      break;
    case 'ManagedKeyRefreshed': {
      const { keyId, state: newState } = event.data;
      const key = keys.get(keyId);
      if (key === undefined) break;
      const updatedAt = newState === key.state ? key.updatedAt : at;
      keys = withKey(keys, changedKey(key, newState, at, updatedAt, key.destruction));
      if (newState === 'ACTIVE') activeKeyId = keyId;
      else if (activeKeyId === keyId) activeKeyId = null;
      break;
    }
    case 'ManagedKeyDestructionScheduled':
      keys = setDestruction(keys, event.data.keyId, { scheduledAt: at, dueAt: event.data.dueAt });
      break;
    case 'ManagedKeyDestructionCancelled':
      keys = setDestruction(keys, event.data.keyId, null);
      break;
    case 'ManagedKeyDestroyed': {
      const key = keys.get(event.data.keyId);
      if (key === undefined) break;
      // The identity the event recorded, not the one material events moved: those are deleted
      // with the stream, and a rebuild must answer as a view that saw them (see scopeEventSchemas.ts).
      const stk = event.data.stkIdentity ?? key.stkIdentity;
      keys = withKey(keys, changedKey(key, 'DESTROYED', key.refreshedAt, at, null, stk));
      if (activeKeyId === key.keyId) activeKeyId = null;
      break;
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
  return {
    scope: state.scope,
    marker,
    keys,
    activeKeyId,
    providerDemotedKeyId: providerDemoted(state, event),
    revision,
  };
}

function providerDemoted(state: ScopeState, event: ScopeEvent): KeyId | null {
  if (event.type !== 'ManagedKeyRefreshed') return null;
  const { keyId, previousState, state: next } = event.data;
  if (previousState === 'ACTIVE' && next === 'INACTIVE') return keyId;
  return next === 'ACTIVE' ? null : state.providerDemotedKeyId;
}
