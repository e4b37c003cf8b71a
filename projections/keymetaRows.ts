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

const MARKERS = new Set<unknown>([null, ...MARKER_STATES]);
const KEY_STATE_SET = new Set<unknown>(KEY_STATES);
const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** Folds one row into `view` (scope, key index, materials); false if it does not decode. */
export function addKeymetaRow(view: KeymetaView, key: string, value: string): boolean {
  let row: unknown;
  try {
    row = JSON.parse(value);
  } catch {
    return false;
  }
  if (!Array.isArray(row) || row.length !== 7) return false;
  const [custodian, namespace, marker, activeKeyId, demoted, revision, keys] = row as unknown[];
  if (!str(custodian) || !str(namespace) || !MARKERS.has(marker) || !strOrNull(activeKeyId)) return false;
  if (!strOrNull(demoted) || !strOrNull(revision) || !Array.isArray(keys)) return false;
  if (revision !== null && !/^\d+$/.test(revision)) return false;
  // The key a scope is stored under is the one its state names (scopeKeyOf's form).
  const sk = `${custodian}:${namespace}` as ScopeKey;
  if (sk !== key) return false;
  const scopeKeys = new Map<KeyId, ManagedKey>();
  for (const k of keys as unknown[]) {
    if (!Array.isArray(k) || k.length !== 13) return false;
    const [id, metadata, hash, checksum, stk, state, createdAt, refreshedAt, updatedAt, scheduledAt, dueAt] =
      k as unknown[];
    const [wrapped, wrappedStk] = [k[11] as unknown, k[12] as unknown];
    if (!str(id) || !str(metadata) || !str(hash) || !str(checksum) || !str(stk)) return false;
    if (!KEY_STATE_SET.has(state) || !str(createdAt) || !str(refreshedAt) || !str(updatedAt)) return false;
    if (!strOrNull(scheduledAt) || !strOrNull(dueAt) || (scheduledAt === null) !== (dueAt === null))
      return false;
    if (!strOrNull(wrapped) || !strOrNull(wrappedStk) || (wrapped === null) !== (wrappedStk === null))
      return false;
    const keyId = id as KeyId;
    scopeKeys.set(keyId, {
      keyId,
      metadata,
      metadataHash: hash as ManagedKey['metadataHash'],
      checksum,
      stkIdentity: stk,
      state: state as ManagedKey['state'],
      createdAt,
      refreshedAt,
      updatedAt,
      destruction: scheduledAt === null || dueAt === null ? null : { scheduledAt, dueAt },
    });
    view.keyIndex.set(keyId, sk);
    if (wrapped !== null && wrappedStk !== null)
      view.materials.set(keyId, { wrapped, stkIdentity: wrappedStk });
  }
  // Fields in evolveScope's order: restored and folded states then share one shape.
  const state: ScopeState = {
    scope: { custodian, namespace } as KeyScope,
    marker: marker as ScopeState['marker'],
    keys: scopeKeys,
    activeKeyId: activeKeyId as KeyId | null,
    providerDemotedKeyId: demoted as KeyId | null,
    revision: revision === null ? null : BigInt(revision),
  };
  view.scopes.set(sk, state);
  return true;
}
