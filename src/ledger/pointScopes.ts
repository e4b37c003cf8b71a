import { evolveKeymeta, type KeymetaView } from '../../projections/keymeta.js';
import {
  type LedgerEvent,
  parseEventOf,
  parseLedgerEvent,
  SCOPE_EVENT_TYPES,
  type ScopeEvent,
} from '../domain/events.js';
import {
  type KeyId,
  type KeyScope,
  parseKeyId,
  type ScopeKey,
  scopeKey,
  scopeKeyOf,
} from '../domain/identities.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { EventStore } from '../store/eventStore.js';

const SCOPE_TYPES: ReadonlySet<string> = new Set(SCOPE_EVENT_TYPES);

function isScopeEvent(event: LedgerEvent): event is ScopeEvent & LedgerEvent {
  return SCOPE_TYPES.has(event.type);
}

/**
 * The keymeta view of a point ledger (a one-shot command about one scope): instead of the whole
 * view (snapshot + tail, O(ledger)), the view holds only the scopes asked for, each folded from its
 * own stream and its keys' material streams when first asked for (O(scope)). Events that arrive
 * live are folded as usual for loaded scopes and skipped for the others.
 *
 * A loaded scope equals what the whole view holds for it at the same position: it is the same
 * fold (evolveKeymeta) of the same events in position order. The events applied live while a scope
 * is being read (after the read began, so perhaps missing from it) are recorded and merged in,
 * deduplicated by position; every event at or before the position when the read began is in it.
 */
export class PointScopes {
  readonly #store: EventStore;
  readonly #names: StreamNames;
  readonly #loaded = new Set<ScopeKey>();
  readonly #loading = new Map<ScopeKey, Promise<void>>();
  /** Events applied live while at least one scope is being read (null: no read in progress). */
  #recent: LedgerEvent[] | null = null;
  #reads = 0;

  constructor(store: EventStore, names: StreamNames) {
    this.#store = store;
    this.#names = names;
  }

  /**
   * Whether the projector folds `event` into the view now: scope events only for loaded scopes;
   * material events always (a key's material may arrive before its scope is asked for, and the
   * scope's load folds it again in order). Every event is recorded while a read is in progress.
   */
  accepts(event: LedgerEvent): boolean {
    this.#recent?.push(event);
    if (!isScopeEvent(event)) return true;
    return this.#loaded.has(scopeKeyOf(event.data.custodian, event.data.namespace));
  }

  /** Loads `scope` into the view (once; concurrent callers share the read). */
  ensure(scope: KeyScope, view: () => KeymetaView): Promise<void> {
    const sk = scopeKey(scope);
    if (this.#loaded.has(sk)) return Promise.resolve();
    let loading = this.#loading.get(sk);
    if (loading === undefined) {
      loading = this.#load(scope, sk, view).finally(() => this.#loading.delete(sk));
      this.#loading.set(sk, loading);
    }
    return loading;
  }

  /**
   * Loads the scope that owns `keyId` (decrypt knows only the key id): its material stream names
   * the scope. An unknown or malformed id loads nothing (the resolver then finds no key).
   */
  async ensureKey(keyId: string, view: () => KeymetaView): Promise<void> {
    let id: KeyId;
    try {
      id = parseKeyId(keyId);
    } catch {
      return;
    }
    // Material streams are short (one event per wrap): reading one whole is cheap.
    const first = (await this.#store.readStream(this.#names.material(id)))[0];
    if (first === undefined) return;
    const event = parseEventOf(first, ['KeyMaterialWrapped']);
    await this.ensure({ custodian: event.data.custodian, namespace: event.data.namespace }, view);
  }

  async #load(scope: KeyScope, sk: ScopeKey, view: () => KeymetaView): Promise<void> {
    if (this.#reads++ === 0) this.#recent = [];
    const recent = this.#recent as LedgerEvent[];
    try {
      const scopeEvents = (await this.#store.readStream(this.#names.scope(scope))).map((r) =>
        parseEventOf(r, SCOPE_EVENT_TYPES),
      );
      const keyIds = new Set<KeyId>();
      for (const event of scopeEvents) {
        const key = 'key' in event.data ? event.data.key : null;
        if (key != null) keyIds.add(key.keyId);
      }
      const materials = await Promise.all(
        [...keyIds].map((id) => this.#store.readStream(this.#names.material(id))),
      );
      // From here to the end nothing awaits: the view's position cannot move under the fold.
      const current = view();
      const position = current.position;
      const byPosition = new Map<bigint, LedgerEvent>();
      for (const event of scopeEvents) byPosition.set(event.position, event);
      for (const stream of materials) for (const r of stream) byPosition.set(r.position, parseLedgerEvent(r));
      // Keys introduced while reading (their lifecycle events are among the recent ones) count too.
      for (const event of recent) {
        if (!isScopeEvent(event) || scopeKeyOf(event.data.custodian, event.data.namespace) !== sk) continue;
        byPosition.set(event.position, event);
        const key = 'key' in event.data ? event.data.key : null;
        if (key != null) keyIds.add(key.keyId);
      }
      for (const event of recent) {
        if (event.type === 'KeyMaterialWrapped' && keyIds.has(event.data.keyId))
          byPosition.set(event.position, event);
      }
      const ordered = [...byPosition.values()]
        .filter((e) => e.position <= position)
        .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
      current.scopes.delete(sk);
      for (const event of ordered) evolveKeymeta(current, event);
      // evolveKeymeta moves the view's position; the view still stands where it stood.
      current.position = position;
      this.#loaded.add(sk);
    } finally {
      if (--this.#reads === 0) this.#recent = null;
    }
  }
}
