import type { KeyRecord, ScopeEvent } from './events.js';
import type { KeyId, KeyScope, MetadataHash } from './identities.js';
import { keyIdOf } from './keyIdentity.js';
import type { KeyState, MarkerState } from './keyState.js';

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
  /** In the order the keys entered the ledger. */
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

export function emptyScopeState(scope: KeyScope): ScopeState {
  return {
    scope,
    marker: null,
    keys: new Map(),
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

function withKey(keys: ReadonlyMap<KeyId, ManagedKey>, key: ManagedKey): Map<KeyId, ManagedKey> {
  const next = new Map(keys);
  next.set(key.keyId, key);
  return next;
}

function setState(
  keys: ReadonlyMap<KeyId, ManagedKey>,
  keyId: KeyId | null,
  state: KeyState,
  at: string,
): ReadonlyMap<KeyId, ManagedKey> {
  const key = keyId === null ? undefined : keys.get(keyId);
  if (key === undefined || key.state === state) return keys;
  return withKey(keys, { ...key, state, updatedAt: at });
}

function withDestruction(
  state: ScopeState,
  keyId: KeyId,
  destruction: PendingDestruction | null,
): ScopeState {
  const key = state.keys.get(keyId);
  if (key === undefined) return state;
  return { ...state, keys: withKey(state.keys, { ...key, destruction }) };
}

/** Makes `record` the ACTIVE key (new or known), demoting the previous ACTIVE key to INACTIVE. */
function activate(state: ScopeState, record: KeyRecord, at: string): ScopeState {
  // One copy of the keys per event: long-lived scopes accumulate keys, and this runs per rotation.
  const keys = new Map(state.keys);
  const previous = state.activeKeyId === null ? undefined : keys.get(state.activeKeyId);
  if (previous !== undefined && previous.keyId !== record.keyId && previous.state !== 'INACTIVE') {
    keys.set(previous.keyId, { ...previous, state: 'INACTIVE', updatedAt: at });
  }
  const known = keys.get(record.keyId);
  keys.set(
    record.keyId,
    known === undefined
      ? { ...record, state: 'ACTIVE', createdAt: at, refreshedAt: at, updatedAt: at, destruction: null }
      : { ...known, state: 'ACTIVE', refreshedAt: at, updatedAt: at },
  );
  return { ...state, marker: 'ACTIVE', keys, activeKeyId: record.keyId };
}

/**
 * Folds one scope event into the scope's state. Pure; `at` is the event's occurredAt and
 * `revision` its stream revision. Events were validated against the decider when written, so this
 * applies them as facts.
 */
export function evolveScope(state: ScopeState, event: ScopeEvent, at: string, revision: bigint): ScopeState {
  const next = applyScopeEvent(state, event, at);
  return { ...next, providerDemotedKeyId: providerDemoted(state, event), revision };
}

function providerDemoted(state: ScopeState, event: ScopeEvent): KeyId | null {
  if (event.type !== 'ManagedKeyRefreshed') return null;
  const { keyId, previousState, state: next } = event.data;
  if (previousState === 'ACTIVE' && next === 'INACTIVE') return keyId;
  return next === 'ACTIVE' ? null : state.providerDemotedKeyId;
}

function applyScopeEvent(state: ScopeState, event: ScopeEvent, at: string): ScopeState {
  switch (event.type) {
    case 'KeyManagementEnabled':
    case 'ManagedKeyRotated':
    case 'ManagedKeySet':
      return activate(state, event.data.key, at);
    case 'KeyManagementEnableFailed':
      return { ...state, marker: event.data.marker };
    case 'KeyManagementDisabled': {
      let keys = state.keys;
      for (const id of event.data.deactivatedKeyIds) keys = setState(keys, id, 'INACTIVE', at);
      return { ...state, marker: 'DISABLED', keys, activeKeyId: null };
    }
    case 'ManagedKeyDisabled': {
      const keys = setState(state.keys, event.data.keyId, 'DISABLED', at);
      return {
        ...state,
        keys,
        activeKeyId: state.activeKeyId === event.data.keyId ? null : state.activeKeyId,
      };
    }
    case 'ManagedKeyReenabled':
      return { ...state, keys: setState(state.keys, event.data.keyId, 'INACTIVE', at) };
    case 'ManagedKeyRefreshed': {
      const { keyId, state: newState } = event.data;
      const key = state.keys.get(keyId);
      if (key === undefined) return state;
      const keys = withKey(state.keys, {
        ...key,
        state: newState,
        refreshedAt: at,
        updatedAt: newState === key.state ? key.updatedAt : at,
      });
      let activeKeyId = state.activeKeyId;
      if (newState === 'ACTIVE') activeKeyId = keyId;
      else if (activeKeyId === keyId) activeKeyId = null;
      return { ...state, keys, activeKeyId };
    }
    case 'ManagedKeyDestructionScheduled':
      return withDestruction(state, event.data.keyId, { scheduledAt: at, dueAt: event.data.dueAt });
    case 'ManagedKeyDestructionCancelled':
      return withDestruction(state, event.data.keyId, null);
    case 'ManagedKeyDestroyed': {
      const key = state.keys.get(event.data.keyId);
      if (key === undefined) return state;
      const keys = withKey(state.keys, { ...key, state: 'DESTROYED', updatedAt: at, destruction: null });
      return {
        ...state,
        keys,
        activeKeyId: state.activeKeyId === key.keyId ? null : state.activeKeyId,
      };
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}
