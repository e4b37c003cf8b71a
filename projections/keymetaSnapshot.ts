import { z } from 'zod';
import type { JsonValue, KeyId, ManagedKey, ScopeKey, ScopeState } from '../src/domain/index.js';
import {
  isKeyId,
  isMetadataHash,
  KEY_STATES,
  keyScope,
  MARKER_STATES,
  parseKeyId,
  parseMetadataHash,
  scopeKey,
} from '../src/domain/index.js';
import { emptyKeymetaView, type KeymetaView } from './keymeta.js';

/**
 * The keymeta view as a JSON snapshot. Bump SNAPSHOT_VERSION whenever the view's shape or the
 * meaning of a fold changes: an older snapshot is then ignored and the view is rebuilt by replay.
 */
export const SNAPSHOT_VERSION = 4;

const keySchema = z.strictObject({
  keyId: z.string().transform(parseKeyId),
  metadata: z.string(),
  metadataHash: z.string().transform(parseMetadataHash),
  checksum: z.string(),
  stkIdentity: z.string(),
  state: z.enum(KEY_STATES),
  createdAt: z.string(),
  refreshedAt: z.string(),
  updatedAt: z.string(),
  destruction: z.strictObject({ scheduledAt: z.string(), dueAt: z.string() }).nullable(),
});

const snapshotSchema = z.strictObject({
  version: z.literal(SNAPSHOT_VERSION),
  scopes: z.array(
    z.strictObject({
      custodian: z.string(),
      namespace: z.string(),
      marker: z.enum(MARKER_STATES).nullable(),
      activeKeyId: z.string().transform(parseKeyId).nullable(),
      providerDemotedKeyId: z.string().transform(parseKeyId).nullable(),
      revision: z.string().regex(/^\d+$/).nullable(),
      keys: z.array(keySchema),
    }),
  ),
  materials: z.array(
    z.strictObject({
      keyId: z.string().transform(parseKeyId),
      wrapped: z.string().min(1),
      stkIdentity: z.string().regex(/^[0-9a-f]{16}$/),
    }),
  ),
});

export function keymetaToSnapshot(view: KeymetaView): JsonValue {
  return {
    version: SNAPSHOT_VERSION,
    scopes: [...view.scopes.values()].map((s) => ({
      custodian: s.scope.custodian,
      namespace: s.scope.namespace,
      marker: s.marker,
      activeKeyId: s.activeKeyId,
      providerDemotedKeyId: s.providerDemotedKeyId,
      revision: s.revision === null ? null : s.revision.toString(),
      keys: [...s.keys.values()].map((k) => ({ ...k, destruction: k.destruction && { ...k.destruction } })),
    })),
    materials: [...view.materials].map(([keyId, m]) => ({ keyId, ...m })),
  };
}

/** The view stored in a snapshot taken at `position`, or null if the snapshot is not usable. */
export function keymetaFromSnapshot(state: JsonValue, position: bigint): KeymetaView | null {
  return viewOfWellFormed(state, position) ?? keymetaFromSnapshotBySchema(state, position);
}

const KEY_STATE_SET = new Set<unknown>(KEY_STATES);
const MARKERS = new Set<unknown>([null, ...MARKER_STATES]);
const DECIMAL = /^\d+$/;
const HEX16 = /^[0-9a-f]{16}$/;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): v is string => typeof v === 'string';
const idOrNull = (v: unknown): boolean => v === null || (str(v) && isKeyId(v));
/** Exactly `n` members: with every named member checked for its type, no other member is there. */
const members = (o: Obj, n: number): boolean => Object.keys(o).length === n;

/**
 * The fast path of keymetaFromSnapshot: a snapshot that has exactly the shape snapshotSchema
 * accepts, checked by hand (no schema run per key: at a million events an as-of snapshot holds
 * hundreds of thousands of keys, and the schema was a large part of loading one). Anything else,
 * undefined: the schema then decides (and gives the answer it always gave).
 */
function viewOfWellFormed(state: JsonValue, position: bigint): KeymetaView | undefined {
  if (!isObj(state) || !members(state, 3) || state.version !== SNAPSHOT_VERSION) return undefined;
  const { scopes, materials } = state;
  if (!Array.isArray(scopes) || !Array.isArray(materials)) return undefined;
  const view = emptyKeymetaView();
  view.position = position;
  for (const s of scopes) {
    if (!isObj(s) || !members(s, 7)) return undefined;
    const { custodian, namespace, marker, activeKeyId, providerDemotedKeyId, revision, keys } = s;
    if (!str(custodian) || !str(namespace) || !MARKERS.has(marker) || !Array.isArray(keys)) return undefined;
    if (!idOrNull(activeKeyId) || !idOrNull(providerDemotedKeyId)) return undefined;
    if (revision !== null && !(str(revision) && DECIMAL.test(revision))) return undefined;
    const scope = keyScope(custodian, namespace);
    const sk: ScopeKey = scopeKey(scope);
    const scopeKeys = new Map<KeyId, ManagedKey>();
    for (const k of keys) {
      if (!isObj(k) || !members(k, 10)) return undefined;
      const { keyId, metadata, metadataHash, checksum, stkIdentity, state: keyState } = k;
      const { createdAt, refreshedAt, updatedAt, destruction } = k;
      if (!str(keyId) || !isKeyId(keyId) || !str(metadataHash) || !isMetadataHash(metadataHash))
        return undefined;
      if (!str(metadata) || !str(checksum) || !str(stkIdentity) || !KEY_STATE_SET.has(keyState))
        return undefined;
      if (!str(createdAt) || !str(refreshedAt) || !str(updatedAt)) return undefined;
      if (
        destruction !== null &&
        !(
          isObj(destruction) &&
          members(destruction, 2) &&
          str(destruction.scheduledAt) &&
          str(destruction.dueAt)
        )
      )
        return undefined;
      // Fields in newKey's order, so restored keys share the folded keys' shape.
      scopeKeys.set(keyId as KeyId, {
        keyId: keyId as KeyId,
        metadata,
        metadataHash: metadataHash as ManagedKey['metadataHash'],
        checksum,
        stkIdentity,
        state: keyState as ManagedKey['state'],
        createdAt,
        refreshedAt,
        updatedAt,
        destruction:
          destruction === null
            ? null
            : { scheduledAt: destruction.scheduledAt as string, dueAt: destruction.dueAt as string },
      });
      view.keyIndex.set(keyId as KeyId, sk);
    }
    view.scopes.set(sk, {
      scope,
      marker: marker as ScopeState['marker'],
      keys: scopeKeys,
      activeKeyId: activeKeyId as KeyId | null,
      providerDemotedKeyId: providerDemotedKeyId as KeyId | null,
      revision: revision === null ? null : BigInt(revision),
    });
  }
  for (const m of materials) {
    if (!isObj(m) || !members(m, 3)) return undefined;
    const { keyId, wrapped, stkIdentity } = m;
    if (!str(keyId) || !isKeyId(keyId) || !str(wrapped) || wrapped.length === 0) return undefined;
    if (!str(stkIdentity) || !HEX16.test(stkIdentity)) return undefined;
    view.materials.set(keyId as KeyId, { wrapped, stkIdentity });
  }
  return view;
}

/**
 * The schema path: any snapshot the fast path did not take. Exported for the test that holds the
 * fast path to it (test/unit/keymetaSnapshot.test.ts); callers use keymetaFromSnapshot.
 */
export function keymetaFromSnapshotBySchema(state: JsonValue, position: bigint): KeymetaView | null {
  const parsed = snapshotSchema.safeParse(state);
  if (!parsed.success) return null;
  const view = emptyKeymetaView();
  view.position = position;
  for (const s of parsed.data.scopes) {
    const scope = keyScope(s.custodian, s.namespace);
    const keys = new Map<KeyId, ManagedKey>(s.keys.map((k) => [k.keyId, k]));
    const sk: ScopeKey = scopeKey(scope);
    // Fields in evolveScope's order: restored and folded states then share one shape.
    const scopeState: ScopeState = {
      scope,
      marker: s.marker,
      keys,
      activeKeyId: s.activeKeyId,
      providerDemotedKeyId: s.providerDemotedKeyId,
      revision: s.revision === null ? null : BigInt(s.revision),
    };
    view.scopes.set(sk, scopeState);
    for (const id of keys.keys()) view.keyIndex.set(id, sk);
  }
  for (const { keyId, ...material } of parsed.data.materials) view.materials.set(keyId, material);
  return view;
}
