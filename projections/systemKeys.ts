import { z } from 'zod';
import type { LedgerEvent, MetadataHash } from '../src/domain/index.js';
import { parseMetadataHash } from '../src/domain/index.js';
import type { JsonValue } from '../src/store/index.js';

export interface SystemKeyView {
  readonly sequence: number;
  readonly identity: string;
  readonly metadata: string;
  readonly metadataHash: MetadataHash;
  readonly recordedAt: string;
}

/** Every system key ever recorded (all are kept: old DEKs stay unwrappable), and the latest. */
export interface SystemKeysView {
  readonly position: bigint;
  readonly keys: readonly SystemKeyView[];
  readonly latest: SystemKeyView | null;
}

export function emptySystemKeysView(): SystemKeysView {
  return { position: 0n, keys: [], latest: null };
}

export function evolveSystemKeys(view: SystemKeysView, event: LedgerEvent): SystemKeysView {
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
  };
  return { position: event.position, keys: [...view.keys, key], latest: key };
}

export function systemKeyByIdentity(view: SystemKeysView, identity: string): SystemKeyView | null {
  return view.keys.find((k) => k.identity === identity) ?? null;
}

const snapshotSchema = z.strictObject({
  version: z.literal(1),
  keys: z.array(
    z.strictObject({
      sequence: z.number().int().min(1),
      identity: z.string().regex(/^[0-9a-f]{16}$/),
      metadata: z.string().min(1),
      metadataHash: z.string().transform(parseMetadataHash),
      recordedAt: z.string(),
    }),
  ),
});

export function systemKeysToSnapshot(view: SystemKeysView): JsonValue {
  return { version: 1, keys: view.keys.map((k) => ({ ...k })) };
}

/** The view stored in a snapshot taken at `position`, or null if the snapshot is not usable. */
export function systemKeysFromSnapshot(state: JsonValue, position: bigint): SystemKeysView | null {
  const parsed = snapshotSchema.safeParse(state);
  if (!parsed.success) return null;
  return { position, keys: parsed.data.keys, latest: parsed.data.keys.at(-1) ?? null };
}
