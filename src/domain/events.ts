import { z } from 'zod';
import { apiTokenEventSchemas } from './apiTokenEventSchemas.js';
import { cacheEventSchemas } from './cacheEventSchemas.js';
import { checkpointEventSchemas } from './checkpointEventSchemas.js';
import { EventSchemaError } from './errors.js';
import { decimalString, sha256Hex } from './eventFields.js';
import { fastCheckData, fastCheckMetadata, isoDatetime } from './fastEventChecks.js';
import { legacyReencryptionEventSchemas } from './legacyReencryptionEventSchemas.js';
import { rewrapEventSchemas } from './rewrapEventSchemas.js';
import { rotationPolicyEventSchemas } from './rotationPolicyEventSchemas.js';
import { scopeEventSchemas } from './scopeEventSchemas.js';
import { systemKeyEventSchemas } from './systemKeyEventSchemas.js';

/**
 * The ledger's events. Every stored event is read back through these schemas: data by its type
 * and `metadata.schemaVersion`. A new shape of an event gets a new version here, with the old
 * one kept so old events still parse.
 *
 * Each stream's family of data schemas is in its own file (scopeEventSchemas.ts,
 * systemKeyEventSchemas.ts, …, their shared fields in eventFields.ts); this file assembles them
 * into the one table, in the order the types have always been listed, and holds the metadata,
 * the types every writer and reader speaks in, and the parser.
 */

export const eventDataSchemas = {
  ...scopeEventSchemas,
  ...cacheEventSchemas,
  ...systemKeyEventSchemas,
  ...rewrapEventSchemas,
  ...legacyReencryptionEventSchemas,
  ...apiTokenEventSchemas,
  ...rotationPolicyEventSchemas,
  ...checkpointEventSchemas,
} as const;

export type LedgerEventType = keyof typeof eventDataSchemas;
export const LEDGER_EVENT_TYPES = Object.keys(eventDataSchemas) as LedgerEventType[];

export const SCHEMA_VERSION = 1;

const metadataFields = {
  actor: z.string().min(1).max(256),
  reason: z.string().max(1024).nullable(),
  correlationId: z.string().min(1).max(128),
  causationId: z.string().max(128).nullable(),
  occurredAt: isoDatetime(),
};

/** Metadata as the hash chain stores it (src/audit/chainingEventStore.ts sets it on every append). */
export const CHAINED_SCHEMA_VERSION = 2;

/**
 * Version 3: version 2 plus `checkpoint`, the revision of the newest checkpoint the writer knew
 * (docs/formats.md): a checkpoint stream that lost checkpoints events name is a verify failure.
 */
export const CHECKPOINTED_SCHEMA_VERSION = 3;

/**
 * Version 1 is what the ledger's writers build, and what was stored before the hash chain.
 * Version 2 adds `prevHash`: the hash of the previous event of the stream (null for its first);
 * version 3 adds `checkpoint` (written once a checkpoint exists), docs/formats.md.
 */
export const eventMetadataSchema = z.discriminatedUnion('schemaVersion', [
  z.strictObject({ schemaVersion: z.literal(SCHEMA_VERSION), ...metadataFields }),
  z.strictObject({
    schemaVersion: z.literal(CHAINED_SCHEMA_VERSION),
    ...metadataFields,
    prevHash: sha256Hex.nullable(),
  }),
  z.strictObject({
    schemaVersion: z.literal(CHECKPOINTED_SCHEMA_VERSION),
    ...metadataFields,
    prevHash: sha256Hex.nullable(),
    checkpoint: decimalString,
  }),
]);
export type EventMetadata = z.infer<typeof eventMetadataSchema>;

type DataOf<T extends LedgerEventType> = z.infer<(typeof eventDataSchemas)[T]>;

/** An event as the domain decides it: type and data, before it is stored. */
export type DomainEvent = {
  [T in LedgerEventType]: { readonly type: T; readonly data: DataOf<T> };
}[LedgerEventType];
export type EventOf<T extends LedgerEventType> = Extract<DomainEvent, { type: T }>;

/** An event read back from the store, parsed. */
export type LedgerEvent = DomainEvent & {
  readonly meta: EventMetadata;
  readonly streamName: string;
  readonly revision: bigint;
  readonly position: bigint;
};

export const SCOPE_EVENT_TYPES = [
  'KeyManagementEnabled',
  'KeyManagementEnableFailed',
  'KeyManagementDisabled',
  'ManagedKeyRotated',
  'ManagedKeySet',
  'ManagedKeyImported',
  'ManagedKeyDisabled',
  'ManagedKeyReenabled',
  'ManagedKeyRefreshed',
  'ManagedKeyDestructionScheduled',
  'ManagedKeyDestructionCancelled',
  'ManagedKeyDestroyed',
] as const satisfies readonly LedgerEventType[];
export type ScopeEvent = EventOf<(typeof SCOPE_EVENT_TYPES)[number]>;

/** The events of the rewrap stream. */
export const REWRAP_EVENT_TYPES = [
  'RewrapStarted',
  'RewrapProgressed',
  'RewrapRetargeted',
  'RewrapFinished',
] as const satisfies readonly LedgerEventType[];
export type RewrapEvent = EventOf<(typeof REWRAP_EVENT_TYPES)[number]>;

/** The events of the legacy re-encryption stream. */
export const LEGACY_REENCRYPTION_EVENT_TYPES = [
  'LegacyReencryptionStarted',
  'LegacyReencryptionProgressed',
  'LegacyReencryptionCompleted',
] as const satisfies readonly LedgerEventType[];
export type LegacyReencryptionEvent = EventOf<(typeof LEGACY_REENCRYPTION_EVENT_TYPES)[number]>;

/** The events of a key's claim stream (src/domain/decideKeyClaim.ts). */
export const KEY_CLAIM_EVENT_TYPES = ['ManagedKeyClaimed'] as const satisfies readonly LedgerEventType[];
export type KeyClaimEvent = EventOf<(typeof KEY_CLAIM_EVENT_TYPES)[number]>;

/** The events of the API token stream. */
export const API_TOKEN_EVENT_TYPES = [
  'ApiTokenCreated',
  'ApiTokenRevoked',
] as const satisfies readonly LedgerEventType[];
export type ApiTokenEvent = EventOf<(typeof API_TOKEN_EVENT_TYPES)[number]>;

/** The events of the rotation policy stream. */
export const ROTATION_POLICY_EVENT_TYPES = [
  'RotationPolicySet',
  'RotationPolicyCleared',
] as const satisfies readonly LedgerEventType[];
export type RotationPolicyEvent = EventOf<(typeof ROTATION_POLICY_EVENT_TYPES)[number]>;

export function isLedgerEventType(type: string): type is LedgerEventType {
  return Object.hasOwn(eventDataSchemas, type);
}

export interface StoredEventShape {
  readonly streamName: string;
  readonly revision: bigint;
  readonly position: bigint;
  readonly type: string;
  readonly data: unknown;
  readonly metadata: unknown;
}

/**
 * Parses a stored event; anything that does not fit stops with ERR_EVENT_SCHEMA naming where.
 *
 * Every event is checked in full. The common shapes pass hand-written checks that vouch for a value
 * only when the zod schema would accept it unchanged (fastEventChecks.ts); everything else, and
 * every event that fails, goes through zod, which decides and explains.
 */
export function parseLedgerEvent(stored: StoredEventShape): LedgerEvent {
  const type = stored.type;
  if (!isLedgerEventType(type)) return schemaFailure(stored, 'unknown event type');
  let meta: EventMetadata;
  if (fastCheckMetadata(stored.metadata)) {
    meta = stored.metadata as EventMetadata;
  } else {
    const parsed = eventMetadataSchema.safeParse(stored.metadata);
    if (!parsed.success)
      return schemaFailure(stored, `metadata: ${z.prettifyError(parsed.error)}`, parsed.error);
    meta = parsed.data;
  }
  let data: unknown;
  if (fastCheckData(type, stored.data)) {
    data = stored.data;
  } else {
    const parsed = eventDataSchemas[type].safeParse(stored.data);
    if (!parsed.success) return schemaFailure(stored, `data: ${z.prettifyError(parsed.error)}`, parsed.error);
    data = parsed.data;
  }
  return {
    type,
    data,
    meta,
    streamName: stored.streamName,
    revision: stored.revision,
    position: stored.position,
  } as LedgerEvent;
}

function schemaFailure(stored: StoredEventShape, problem: string, cause?: unknown): never {
  throw new EventSchemaError(stored.streamName, stored.revision, stored.type, problem, { cause });
}

/**
 * Parses a stored event that must be one of the types its stream holds (`types`): anything else
 * there, however well-formed, stops with ERR_EVENT_SCHEMA naming stream and revision.
 */
export function parseEventOf<T extends LedgerEventType>(
  stored: StoredEventShape,
  types: readonly T[],
): EventOf<T> & LedgerEvent {
  const event = parseLedgerEvent(stored);
  if (!(types as readonly string[]).includes(event.type)) {
    throw new EventSchemaError(
      stored.streamName,
      stored.revision,
      stored.type,
      'this event type does not belong in this stream',
    );
  }
  return event as EventOf<T> & LedgerEvent;
}
