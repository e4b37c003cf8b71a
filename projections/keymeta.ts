import type { KeyId, KeyScope, LedgerEvent, ScopeKey, ScopeState } from '../src/domain/index.js';
import { emptyScopeState, evolveScope, SCOPE_EVENT_TYPES, scopeKey } from '../src/domain/index.js';

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

const scopeEventTypes: ReadonlySet<string> = new Set(SCOPE_EVENT_TYPES);

export function evolveKeymeta(view: KeymetaView, event: LedgerEvent): KeymetaView {
  if (event.type === 'KeyMaterialWrapped') {
    const owner = view.keyIndex.get(event.data.keyId);
    const state = owner === undefined ? undefined : view.scopes.get(owner);
    const key = state?.keys.get(event.data.keyId);
    // A destroyed key's material never comes back: EventStoreDB keeps a deleted stream's events in
    // $all until a scavenge, and a rewrap racing the destruction may write one more copy (which the
    // next destroyDueKeys deletes).
    if (key?.state === 'DESTROYED') {
      view.position = event.position;
      return view;
    }
    view.materials.set(event.data.keyId, {
      wrapped: event.data.wrapped,
      stkIdentity: event.data.stkIdentity,
    });
    // A rewrap moves a key under a newer system key; the first material of a key arrives before
    // the lifecycle event that introduces it, which carries the same identity.
    if (
      state !== undefined &&
      owner !== undefined &&
      key !== undefined &&
      key.stkIdentity !== event.data.stkIdentity
    ) {
      const keys = new Map(state.keys);
      keys.set(key.keyId, { ...key, stkIdentity: event.data.stkIdentity });
      view.scopes.set(owner, { ...state, keys });
    }
  } else if (scopeEventTypes.has(event.type)) {
    const scopeEvent = event as Extract<LedgerEvent, { type: (typeof SCOPE_EVENT_TYPES)[number] }>;
    const scope: KeyScope = { custodian: scopeEvent.data.custodian, namespace: scopeEvent.data.namespace };
    const sk = scopeKey(scope);
    const before = view.scopes.get(sk) ?? emptyScopeState(scope);
    const after = evolveScope(before, scopeEvent, event.meta.occurredAt, event.revision);
    view.scopes.set(sk, after);
    // Only events that carry a key record bring a key into a scope.
    if ('key' in scopeEvent.data) view.keyIndex.set(scopeEvent.data.key.keyId, sk);
    // Crypto-shredding: the view (and so every snapshot taken from now on) forgets the material.
    if (scopeEvent.type === 'ManagedKeyDestroyed') view.materials.delete(scopeEvent.data.keyId);
  }
  view.position = event.position;
  return view;
}

export function scopeOf(view: KeymetaView, scope: KeyScope): ScopeState {
  return view.scopes.get(scopeKey(scope)) ?? emptyScopeState(scope);
}
