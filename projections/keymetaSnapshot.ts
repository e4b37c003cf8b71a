import { z } from 'zod';
import type { JsonValue, KeyId, ManagedKey, ScopeKey, ScopeState } from '../src/domain/index.js';
import {
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
