import type {
  EventOf,
  KeyId,
  KeyScope,
  LedgerEvent,
  ScopeEvent,
  ScopeKey,
  ScopeState,
} from '../src/domain/index.js';
import {
  emptyScopeState,
  evolveScope,
  PersistentOrderedMap,
  scopeKey,
  scopeKeyOf,
} from '../src/domain/index.js';

/**
 * The keymeta view (HBase's hbase:keymeta, the L2 layer): every scope with its marker and keys
 * (state, metadata hash, checksum, refresh time, STK identity; a key's id is also the reference to
 * its wrapped material). Key bytes are never part of it.
 *
 * Each scope's entry is the pure fold `evolveScope` of that scope's events, the same fold the
 * decider uses. The view itself is a Map of those folds that `evolveKeymeta` updates in place:
 * copying a map of 100k scopes per event would make a replay of a million events quadratic.
 */
export interface KeymetaView {
  /** Global position of the last event folded in (0n: none). */
  position: bigint;
  readonly scopes: Map<ScopeKey, ScopeState>;
  /** Which scope each key belongs to. */
  readonly keyIndex: Map<KeyId, ScopeKey>;
  /**
   * Each key's latest wrapped material (ciphertext under a system key, never plaintext): with it
   * the L2 layer answers a lookup without reading the store, as HBase's keymeta table holds the
   * wrapped DEKs.
   */
  readonly materials: Map<KeyId, WrappedMaterial>;
}

export interface WrappedMaterial {
  readonly wrapped: string;
  readonly stkIdentity: string;
}

export function emptyKeymetaView(): KeymetaView {
  return { position: 0n, scopes: new Map(), keyIndex: new Map(), materials: new Map() };
}

export function evolveKeymeta(view: KeymetaView, event: LedgerEvent): KeymetaView {
  switch (event.type) {
    case 'KeyMaterialWrapped':
      materialWrapped(view, event);
      break;
    case 'KeyManagementEnabled':
    case 'KeyManagementEnableFailed':
    case 'KeyManagementDisabled':
    case 'ManagedKeyRotated':
    case 'ManagedKeySet':
    case 'ManagedKeyImported':
    case 'ManagedKeyDisabled':
    case 'ManagedKeyReenabled':
    case 'ManagedKeyRefreshed':
    case 'ManagedKeyDestructionScheduled':
    case 'ManagedKeyDestructionCancelled':
    case 'ManagedKeyDestroyed':
      scopeEvent(view, event);
      break;
    default: {
      // The other events (system keys, cache, rewrap campaigns, checkpoints) leave the view alone.
      // Typed so that a scope event type added to events.ts without a case here fails to compile.
      const other: Exclude<LedgerEvent['type'], ScopeEvent['type'] | 'KeyMaterialWrapped'> = event.type;
      void other;
      break;
    }
  }
  view.position = event.position;
  return view;
}

function materialWrapped(view: KeymetaView, event: EventOf<'KeyMaterialWrapped'>): void {
  const { keyId, stkIdentity } = event.data;
  const owner = view.keyIndex.get(keyId);
  const state = owner === undefined ? undefined : view.scopes.get(owner);
  const key = state?.keys.get(keyId);
  // A destroyed key's material never comes back: EventStoreDB keeps a deleted stream's events in
  // $all until a scavenge, and a rewrap racing the destruction may write one more copy (which the
  // next destroyDueKeys deletes).
  if (key?.state === 'DESTROYED') return;
  view.materials.set(keyId, { wrapped: event.data.wrapped, stkIdentity });
  // A rewrap moves a key under a newer system key; the first material of a key arrives before
  // the lifecycle event that introduces it, which carries the same identity.
  if (state !== undefined && owner !== undefined && key !== undefined && key.stkIdentity !== stkIdentity) {
    const keys = PersistentOrderedMap.from(state.keys).with(key.keyId, { ...key, stkIdentity });
    view.scopes.set(owner, { ...state, keys });
  }
}

function scopeEvent(view: KeymetaView, event: ScopeEvent & LedgerEvent): void {
  const { custodian, namespace } = event.data;
  const sk = scopeKeyOf(custodian, namespace);
  const before = view.scopes.get(sk) ?? emptyScopeState({ custodian, namespace });
  view.scopes.set(sk, evolveScope(before, event, event.meta.occurredAt, event.revision));
  switch (event.type) {
    case 'KeyManagementEnabled':
    case 'ManagedKeyRotated':
    case 'ManagedKeySet':
    case 'ManagedKeyImported':
      // Only events that carry a key record bring a key into a scope.
      view.keyIndex.set(event.data.key.keyId, sk);
      break;
    case 'ManagedKeyDestroyed':
      // Crypto-shredding: the view (and so every snapshot taken from now on) forgets the material.
      view.materials.delete(event.data.keyId);
      break;
    default:
      break;
  }
}

export function scopeOf(view: KeymetaView, scope: KeyScope): ScopeState {
  return view.scopes.get(scopeKey(scope)) ?? emptyScopeState(scope);
}
