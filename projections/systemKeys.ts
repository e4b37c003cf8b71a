import { z } from 'zod';
import type { JsonValue, LedgerEvent, MetadataHash } from '../src/domain/index.js';
import { parseMetadataHash } from '../src/domain/index.js';

export interface SystemKeyView {
  readonly sequence: number;
  readonly identity: string;
  readonly metadata: string;
  readonly metadataHash: MetadataHash;
  readonly recordedAt: string;
  /** When it was retired (SystemKeyRetired): never fetched or wrapped under again. Null while in service. */
  readonly retiredAt: string | null;
  /** When its objects were destroyed in the provider (SystemKeyDestroyed). Null while they exist. */
  readonly destroyedAt: string | null;
}

/**
 * Every system key ever recorded, and the latest. All are kept, so old DEKs stay unwrappable until
 * a rewrap has moved them and the old key is retired; a retired key stays listed (marked), so it is
 * still recognised (e.g. refused when a provider offers it as a data key).
 */
export interface SystemKeysView {
  readonly position: bigint;
  readonly keys: readonly SystemKeyView[];
  readonly latest: SystemKeyView | null;
}

export function emptySystemKeysView(): SystemKeysView {
  return { position: 0n, keys: [], latest: null };
}

export function evolveSystemKeys(view: SystemKeysView, event: LedgerEvent): SystemKeysView {
  if (event.type === 'SystemKeyRetired') {
    const retire = (k: SystemKeyView): SystemKeyView =>
      k.identity === event.data.identity && k.retiredAt === null
        ? { ...k, retiredAt: event.meta.occurredAt }
        : k;
    const keys = view.keys.map(retire);
    return { position: event.position, keys, latest: keys.at(-1) ?? null };
  }
  if (event.type === 'SystemKeyDestroyed') {
    const destroy = (k: SystemKeyView): SystemKeyView =>
      k.identity === event.data.identity && k.destroyedAt === null
        ? { ...k, destroyedAt: event.meta.occurredAt }
        : k;
    const keys = view.keys.map(destroy);
    return { position: event.position, keys, latest: keys.at(-1) ?? null };
  }
  if (event.type !== 'SystemKeyRecorded' && event.type !== 'SystemKeyRotated') {
    return { ...view, position: event.position };
  }
  const { sequence, identity, metadata, metadataHash } = event.data;
  const key: SystemKeyView = {
    sequence,
    identity,
    metadata,
    metadataHash,
    recordedAt: event.meta.occurredAt,
    retiredAt: null,
    destroyedAt: null,
  };
  return { position: event.position, keys: [...view.keys, key], latest: key };
}

export function systemKeyByIdentity(view: SystemKeysView, identity: string): SystemKeyView | null {
  return view.keys.find((k) => k.identity === identity) ?? null;
}

/** Whether the system key `identity` has been retired. */
export function isSystemKeyRetired(view: SystemKeysView, identity: string): boolean {
  return view.keys.some((k) => k.identity === identity && k.retiredAt !== null);
}

/** Bump whenever the view's shape or a fold's meaning changes: older snapshots are then replayed. */
export const SYSTEM_KEYS_SNAPSHOT_VERSION = 3;

const snapshotSchema = z.strictObject({
  version: z.literal(SYSTEM_KEYS_SNAPSHOT_VERSION),
  keys: z.array(
    z.strictObject({
      sequence: z.number().int().min(1),
      identity: z.string().regex(/^[0-9a-f]{16}$/),
      metadata: z.string().min(1),
      metadataHash: z.string().transform(parseMetadataHash),
      recordedAt: z.string(),
      retiredAt: z.string().nullable(),
      destroyedAt: z.string().nullable(),
    }),
  ),
});

export function systemKeysToSnapshot(view: SystemKeysView): JsonValue {
  return { version: SYSTEM_KEYS_SNAPSHOT_VERSION, keys: view.keys.map((k) => ({ ...k })) };
}

/** The view stored in a snapshot taken at `position`, or null if the snapshot is not usable. */
export function systemKeysFromSnapshot(state: JsonValue, position: bigint): SystemKeysView | null {
  const parsed = snapshotSchema.safeParse(state);
  if (!parsed.success) return null;
  return { position, keys: parsed.data.keys, latest: parsed.data.keys.at(-1) ?? null };
}
