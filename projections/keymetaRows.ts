import type { KeyId, KeyScope, ManagedKey, ScopeKey, ScopeState } from '../src/domain/index.js';
import { KEY_STATES, MARKER_STATES } from '../src/domain/index.js';
import type { KeymetaView, WrappedMaterial } from './keymeta.js';

/**
 * The keymeta view as rows, one per scope (the row snapshot, src/ledger/keymetaRowSnapshots.ts):
 * the scope's state and the wrapped material of its keys, as a compact JSON array (positional, no
 * member names: at a million scopes the names alone would be hundreds of MB). Rows are decoded
 * as they stream in, and the view is kept only if the digest of all rows matches the sealed
 * header, so decoding checks shapes cheaply (a row that does not decode rejects the snapshot)
 * instead of running a schema per row.
 *
 * Row: [custodian, namespace, marker, activeKeyId, providerDemotedKeyId, revision, keys]
 * Key: [keyId, metadata, metadataHash, checksum, stkIdentity, state, createdAt, refreshedAt,
 *       updatedAt, scheduledAt, dueAt, wrapped, wrappedStkIdentity] (null where absent)
 */

/** Bump when the row layout changes: older row snapshots are then ignored (rebuilt by replay). */
export const KEYMETA_ROWS_VERSION = 1;

export function keymetaRowOf(state: ScopeState, materials: ReadonlyMap<KeyId, WrappedMaterial>): string {
  const keys: unknown[] = [];
  for (const k of state.keys.values()) {
    const m = materials.get(k.keyId);
    keys.push([
      k.keyId,
      k.metadata,
      k.metadataHash,
      k.checksum,
      k.stkIdentity,
      k.state,
      k.createdAt,
      k.refreshedAt,
      k.updatedAt,
      k.destruction?.scheduledAt ?? null,
      k.destruction?.dueAt ?? null,
      m?.wrapped ?? null,
      m?.stkIdentity ?? null,
    ]);
  }
  return JSON.stringify([
    state.scope.custodian,
    state.scope.namespace,
    state.marker,
    state.activeKeyId,
    state.providerDemotedKeyId,
    state.revision === null ? null : state.revision.toString(),
    keys,
  ]);
}

/** The one string of each state a decoded row names (JSON.parse makes a new one per row). */
const MARKER_OF = new Map<unknown, ScopeState['marker']>([
  [null, null],
  ...MARKER_STATES.map((s) => [s, s] as const),
]);
const KEY_STATE_OF = new Map<unknown, ManagedKey['state']>(KEY_STATES.map((s) => [s, s] as const));
/** Revisions below this are shared bigints (most scopes of a large ledger have a short stream). */
const SMALL_REVISIONS = Array.from({ length: 64 }, (_, i) => BigInt(i));
/** How many distinct values an intern table keeps (namespaces and system key identities are few). */
const INTERN_LIMIT = 256;
const DIGITS = /^\d+$/;
const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/**
 * Decodes rows into one view. At a million scopes the view is most of the heap, and the garbage
 * collector's work grows with the number of objects it holds, so the decoder shares what rows
 * repeat instead of keeping one copy per row: namespaces and system key identities (a few
 * values), states (constants), a key's three timestamps (equal until the key changes), the
 * scope's ACTIVE key id (its key's own id), its key (the row's key string itself), small
 * revisions. The view holds the same values either way.
 */
export class KeymetaRowDecoder {
  readonly #view: KeymetaView;
  readonly #interned = new Map<string, string>();
  /** The last timestamp decoded: a bulk-built ledger has runs of keys created in the same ms. */
  #lastAt = '';

  constructor(view: KeymetaView) {
    this.#view = view;
  }

  /** Folds one row into the view (scope, key index, materials); false if it does not decode. */
  add(key: string, value: string): boolean {
    let row: unknown;
    try {
      row = JSON.parse(value);
    } catch {
      return false;
    }
    if (!Array.isArray(row) || row.length !== 7) return false;
    const [custodian, namespace, markerValue, activeKeyId, demoted, revision, keys] = row as unknown[];
    const marker = MARKER_OF.get(markerValue);
    if (!str(custodian) || !str(namespace) || marker === undefined || !strOrNull(activeKeyId)) return false;
    if (!strOrNull(demoted) || !strOrNull(revision) || !Array.isArray(keys)) return false;
    if (revision !== null && !DIGITS.test(revision)) return false;
    // The key a scope is stored under is the one its state names (scopeKeyOf's form), checked
    // without building that string: the row's own key is kept.
    if (
      key.length !== custodian.length + 1 + namespace.length ||
      !key.startsWith(custodian) ||
      key.charCodeAt(custodian.length) !== 58 /* ':' */ ||
      !key.endsWith(namespace)
    )
      return false;
    const sk = key as ScopeKey;
    const view = this.#view;
    let active = activeKeyId as KeyId | null;
    const scopeKeys = new Map<KeyId, ManagedKey>();
    for (const k of keys as unknown[]) {
      if (!Array.isArray(k) || k.length !== 13) return false;
      const [id, metadata, hash, checksum, stk, stateValue, created, refreshed, updated, scheduledAt, dueAt] =
        k as unknown[];
      const [wrapped, wrappedStk] = [k[11] as unknown, k[12] as unknown];
      const state = KEY_STATE_OF.get(stateValue);
      if (!str(id) || !str(metadata) || !str(hash) || !str(checksum) || !str(stk)) return false;
      if (state === undefined || !str(created) || !str(refreshed) || !str(updated)) return false;
      if (!strOrNull(scheduledAt) || !strOrNull(dueAt) || (scheduledAt === null) !== (dueAt === null))
        return false;
      if (!strOrNull(wrapped) || !strOrNull(wrappedStk) || (wrapped === null) !== (wrappedStk === null))
        return false;
      const keyId = id as KeyId;
      if (active === keyId) active = keyId;
      const createdAt = this.#at(created);
      const refreshedAt = refreshed === createdAt ? createdAt : refreshed;
      const updatedAt = updated === createdAt ? createdAt : updated === refreshedAt ? refreshedAt : updated;
      scopeKeys.set(keyId, {
        keyId,
        metadata,
        metadataHash: hash as ManagedKey['metadataHash'],
        checksum,
        stkIdentity: this.#intern(stk),
        state,
        createdAt,
        refreshedAt,
        updatedAt,
        destruction: scheduledAt === null || dueAt === null ? null : { scheduledAt, dueAt },
      });
      view.keyIndex.set(keyId, sk);
      if (wrapped !== null && wrappedStk !== null)
        view.materials.set(keyId, { wrapped, stkIdentity: this.#intern(wrappedStk) });
    }
    // Fields in evolveScope's order: restored and folded states then share one shape.
    const state: ScopeState = {
      scope: { custodian, namespace: this.#intern(namespace) } as KeyScope,
      marker,
      keys: scopeKeys,
      activeKeyId: active,
      providerDemotedKeyId: demoted as KeyId | null,
      revision: revisionOf(revision),
    };
    view.scopes.set(sk, state);
    return true;
  }

  /** The one copy of a string the view holds, while there are few distinct ones. */
  #intern(value: string): string {
    const known = this.#interned.get(value);
    if (known !== undefined) return known;
    if (this.#interned.size < INTERN_LIMIT) this.#interned.set(value, value);
    return value;
  }

  #at(value: string): string {
    if (value === this.#lastAt) return this.#lastAt;
    this.#lastAt = value;
    return value;
  }
}

function revisionOf(revision: string | null): bigint | null {
  if (revision === null) return null;
  if (revision.length <= 2) {
    const small = SMALL_REVISIONS[Number(revision)];
    if (small !== undefined) return small;
  }
  return BigInt(revision);
}
