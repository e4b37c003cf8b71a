import type {
  EventOf,
  KeyId,
  KeyRecord,
  KeyState,
  LedgerEvent,
  ManagedKey,
  PendingDestruction,
  ScopeEvent,
  ScopeKey,
  ScopeState,
} from '../src/domain/index.js';
import { changedKey, newKey, scopeKeyOf } from '../src/domain/index.js';
import type { KeymetaView } from './keymeta.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type WorkingKey = Mutable<ManagedKey>;
type WorkingScope = Omit<Mutable<ScopeState>, 'keys'> & { keys: Map<KeyId, ManagedKey> };

/**
 * The keymeta fold for replays (catch-up, as-of): the same view `evolveKeymeta` gives, event by
 * event, without a new scope state per event and a copy of the scope's key map on every key
 * change. Scope states and keys this replay made since its last `view()` are its private working
 * state and are changed in place; any other (one a caller may hold) is copied once, on its first
 * change, and from then on is the replay's own. `view()` is the boundary: it hands the view out and
 * gives up every working object, so whatever a caller holds from then on never changes again, as
 * with `evolveKeymeta`. Between two `view()` calls nobody may read the states in the view.
 *
 * The events are applied as facts, as `evolveScope` applies them (they were checked when parsed
 * and decided when written). test/unit/keymetaReplay.test.ts holds this fold to
 * `evolveKeymeta` over random event sequences, boundaries included.
 */
export class KeymetaReplay {
  readonly #view: KeymetaView;
  readonly #scopes: Map<ScopeKey, ScopeState>;
  /** Scope states and keys made since the last boundary: only these are changed in place. */
  readonly #owned = new Set<object>();

  /** Takes `view` over: nobody else changes it until the replay's `view()` hands it back. */
  constructor(view: KeymetaView) {
    this.#view = view;
    this.#scopes = view.scopes;
  }

  get position(): bigint {
    return this.#view.position;
  }

  /** Folds one event in (an event at or below the view's position is the caller's mistake). */
  apply(event: LedgerEvent): void {
    switch (event.type) {
      case 'KeyMaterialWrapped':
        this.#material(event);
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
        this.#scopeEvent(event);
        break;
      default: {
        // The other events leave the view alone. Typed as in evolveKeymeta, so that a scope event
        // type without a case here fails to compile (ManagedKeyImported was once missing here).
        const other: Exclude<LedgerEvent['type'], ScopeEvent['type'] | 'KeyMaterialWrapped'> = event.type;
        void other;
        break;
      }
    }
    this.#view.position = event.position;
  }

  /** The boundary: the view as it is now; every state in it is immutable from here on. */
  view(): KeymetaView {
    this.#owned.clear();
    return this.#view;
  }

  /** The scope's working state, made or copied (keys map included) on first use since the boundary. */
  #working(sk: ScopeKey, data: { readonly custodian: string; readonly namespace: string }): WorkingScope {
    const state = this.#scopes.get(sk);
    if (state !== undefined && this.#owned.has(state)) return state as WorkingScope;
    // Fields in evolveScope's order; the keys a Map of the replay's own, changed in place until
    // the boundary (not emptyScopeState's: its keys are an immutable map, not to be written to).
    const working: WorkingScope =
      state === undefined
        ? {
            scope: { custodian: data.custodian, namespace: data.namespace } as ScopeState['scope'],
            marker: null,
            keys: new Map(),
            activeKeyId: null,
            providerDemotedKeyId: null,
            revision: null,
          }
        : {
            scope: state.scope,
            marker: state.marker,
            keys: new Map(state.keys),
            activeKeyId: state.activeKeyId,
            providerDemotedKeyId: state.providerDemotedKeyId,
            revision: state.revision,
          };
    this.#owned.add(working);
    this.#scopes.set(sk, working);
    return working;
  }

  /** Sets fields of `key` (of the working `scope`): in place when the replay made it, else on a copy. */
  #change(
    scope: WorkingScope,
    key: ManagedKey,
    state: KeyState,
    refreshedAt: string,
    updatedAt: string,
    destruction: PendingDestruction | null,
    stkIdentity: string = key.stkIdentity,
  ): void {
    if (this.#owned.has(key)) {
      const working = key as WorkingKey;
      working.state = state;
      working.refreshedAt = refreshedAt;
      working.updatedAt = updatedAt;
      working.destruction = destruction;
      working.stkIdentity = stkIdentity;
      return;
    }
    const copy = changedKey(key, state, refreshedAt, updatedAt, destruction, stkIdentity);
    this.#owned.add(copy);
    scope.keys.set(copy.keyId, copy);
  }

  #setState(scope: WorkingScope, keyId: KeyId, state: KeyState, at: string): void {
    const key = scope.keys.get(keyId);
    if (key === undefined || key.state === state) return;
    this.#change(scope, key, state, key.refreshedAt, at, key.destruction);
  }

  #setDestruction(scope: WorkingScope, keyId: KeyId, destruction: PendingDestruction | null): void {
    const key = scope.keys.get(keyId);
    if (key === undefined) return;
    this.#change(scope, key, key.state, key.refreshedAt, key.updatedAt, destruction);
  }

  #activate(scope: WorkingScope, record: KeyRecord, at: string): void {
    const previous = scope.activeKeyId === null ? undefined : scope.keys.get(scope.activeKeyId);
    if (previous !== undefined && previous.keyId !== record.keyId && previous.state !== 'INACTIVE') {
      this.#change(scope, previous, 'INACTIVE', previous.refreshedAt, at, previous.destruction);
    }
    const known = scope.keys.get(record.keyId);
    if (known !== undefined) {
      this.#change(scope, known, 'ACTIVE', at, at, known.destruction);
      return;
    }
    const key = newKey(record, 'ACTIVE', at);
    this.#owned.add(key);
    scope.keys.set(key.keyId, key);
  }

  #scopeEvent(event: ScopeEvent & LedgerEvent): void {
    const data = event.data;
    const sk = scopeKeyOf(data.custodian, data.namespace);
    const scope = this.#working(sk, data);
    const at = event.meta.occurredAt;
    // evolveScope's providerDemoted, from the state before this event.
    let demoted: KeyId | null = null;
    switch (event.type) {
      case 'KeyManagementEnabled':
      case 'ManagedKeyRotated':
      case 'ManagedKeySet': {
        const record = event.data.key;
        this.#activate(scope, record, at);
        scope.marker = 'ACTIVE';
        scope.activeKeyId = record.keyId;
        this.#view.keyIndex.set(record.keyId, sk);
        break;
      }
      case 'ManagedKeyImported': {
        // As evolveScope: ACTIVE is a rotation to the imported key; INACTIVE adds it if unknown.
        const record = event.data.key;
        this.#view.keyIndex.set(record.keyId, sk);
        if (event.data.state === 'ACTIVE') {
          this.#activate(scope, record, at);
          scope.marker = 'ACTIVE';
          scope.activeKeyId = record.keyId;
        } else if (!scope.keys.has(record.keyId)) {
          const key = newKey(record, 'INACTIVE', at);
          this.#owned.add(key);
          scope.keys.set(key.keyId, key);
        }
        break;
      }
      case 'KeyManagementEnableFailed':
        scope.marker = event.data.marker;
        break;
      case 'KeyManagementDisabled':
        for (const id of event.data.deactivatedKeyIds) this.#setState(scope, id, 'INACTIVE', at);
        scope.marker = 'DISABLED';
        scope.activeKeyId = null;
        break;
      case 'ManagedKeyDisabled':
        this.#setState(scope, event.data.keyId, 'DISABLED', at);
        if (scope.activeKeyId === event.data.keyId) scope.activeKeyId = null;
        break;
      case 'ManagedKeyReenabled':
        this.#setState(scope, event.data.keyId, 'INACTIVE', at);
        break;
      case 'ManagedKeyRefreshed': {
        const { keyId, previousState, state: next } = event.data;
        if (previousState === 'ACTIVE' && next === 'INACTIVE') demoted = keyId;
        else if (next !== 'ACTIVE') demoted = scope.providerDemotedKeyId;
        const key = scope.keys.get(keyId);
        if (key === undefined) break;
        const updatedAt = next === key.state ? key.updatedAt : at;
        this.#change(scope, key, next, at, updatedAt, key.destruction);
        if (next === 'ACTIVE') scope.activeKeyId = keyId;
        else if (scope.activeKeyId === keyId) scope.activeKeyId = null;
        break;
      }
      case 'ManagedKeyDestructionScheduled':
        this.#setDestruction(scope, event.data.keyId, { scheduledAt: at, dueAt: event.data.dueAt });
        break;
      case 'ManagedKeyDestructionCancelled':
        this.#setDestruction(scope, event.data.keyId, null);
        break;
      case 'ManagedKeyDestroyed': {
        // Crypto-shredding: the view forgets the material, whether or not it knew the key.
        this.#view.materials.delete(event.data.keyId);
        const key = scope.keys.get(event.data.keyId);
        if (key === undefined) break;
        // As evolveScope: the identity the event recorded (material events are deleted with the stream).
        const stk = event.data.stkIdentity ?? key.stkIdentity;
        this.#change(scope, key, 'DESTROYED', key.refreshedAt, at, null, stk);
        if (scope.activeKeyId === key.keyId) scope.activeKeyId = null;
        break;
      }
      default: {
        // A scope event type without a case here fails to compile.
        const unreachable: never = event;
        void unreachable;
        return;
      }
    }
    scope.providerDemotedKeyId = demoted;
    scope.revision = event.revision;
  }

  #material(event: EventOf<'KeyMaterialWrapped'>): void {
    const { keyId, stkIdentity, wrapped } = event.data;
    const owner = this.#view.keyIndex.get(keyId);
    const state = owner === undefined ? undefined : this.#scopes.get(owner);
    const key = state?.keys.get(keyId);
    // As evolveKeymeta: a destroyed key's material never comes back.
    if (key?.state === 'DESTROYED') return;
    this.#view.materials.set(keyId, { wrapped, stkIdentity });
    if (state === undefined || owner === undefined || key === undefined || key.stkIdentity === stkIdentity)
      return;
    const scope = this.#working(owner, state.scope);
    this.#change(scope, key, key.state, key.refreshedAt, key.updatedAt, key.destruction, stkIdentity);
  }
}
