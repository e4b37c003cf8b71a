import { z } from 'zod';
import { PRINCIPAL_NAME, parseRecordedGrant, TOKEN_ID } from './apiTokenFields.js';
import { EventSchemaError } from './errors.js';
import { fastCheckData, fastCheckMetadata, HEX16, isoDatetime, SHA256_HEX } from './fastEventChecks.js';
import type { Custodian, KeyId, MetadataHash, Namespace } from './identities.js';
import { parseCustodian, parseKeyId, parseMetadataHash, parseNamespace } from './identities.js';
import { DESTROYABLE_KEY_STATES, KEY_STATES, PROVIDER_KEY_STATES } from './keyState.js';

/**
 * The ledger's events. Every stored event is read back through these schemas: data by its type
 * and `metadata.schemaVersion`. A new shape of an event gets a new version here, with the old
 * one kept so old events still parse.
 */

function branded<T extends string>(parse: (s: string) => T) {
  return z.string().transform((value, ctx): T => {
    try {
      return parse(value);
    } catch (error) {
      ctx.issues.push({ code: 'custom', input: value, message: (error as Error).message });
      return z.NEVER;
    }
  });
}

const custodian = branded<Custodian>(parseCustodian);
const namespace = branded<Namespace>(parseNamespace);
const keyId = branded<KeyId>(parseKeyId);
const metadataHash = branded<MetadataHash>(parseMetadataHash);
const hex16 = z.string().regex(HEX16);
const keyState = z.enum(KEY_STATES);
/** A rewrap campaign's id: a lowercase UUID. */
export const REWRAP_CAMPAIGN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const campaignId = z.string().regex(REWRAP_CAMPAIGN_ID);
const count = z.number().int().min(0);
/** A legacy re-encryption campaign's name, as the caller chose it. */
export const LEGACY_CAMPAIGN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const legacyCampaign = z.string().regex(LEGACY_CAMPAIGN_NAME);
/** A record's id as the caller's store names it (a primary key, as text). */
export const MAX_LEGACY_RECORD_ID = 256;
const legacyRecordId = z.string().min(1).max(MAX_LEGACY_RECORD_ID);
/** Records per batch of a legacy re-encryption (one checkpoint event each). */
export const MAX_LEGACY_BATCH = 1000;
const providerKeyState = z.enum(PROVIDER_KEY_STATES);
/** A bigint as JSON holds it: a decimal string without leading zeros. */
const decimalString = z.string().regex(/^(0|[1-9][0-9]{0,19})$/);
const sha256Hex = z.string().regex(SHA256_HEX);
const destroyableState = z.enum(DESTROYABLE_KEY_STATES);
const tokenId = z.string().regex(TOKEN_ID);
/** A grant as formatGrant writes it; parsed back only when folded (projections/apiTokens.ts). */
const recordedGrant = z
  .string()
  .max(1024)
  .refine((text) => parseRecordedGrant(text) !== null, 'a grant is <role>:<* or canonical base64 custodian>');

/** What the ledger records of a key: never its bytes. */
export const keyRecordSchema = z.strictObject({
  keyId,
  metadata: z.string().min(1).max(4096),
  metadataHash,
  /** hex(HMAC-SHA256(key, "keyledger-kcv"))[0..16]: identifies the key, reveals nothing usable. */
  checksum: hex16,
  /** The system key that wraps the material (its checksum). */
  stkIdentity: hex16,
});
export type KeyRecord = z.infer<typeof keyRecordSchema>;

const scoped = { custodian, namespace };

const systemKeyData = z.strictObject({
  sequence: z.number().int().min(1),
  /** The system key's checksum: what wrapped material records to find its STK. */
  identity: hex16,
  metadata: z.string().min(1).max(4096),
  metadataHash,
  previousIdentity: hex16.nullable(),
});

/** Whose rotation policy: one scope's, the default of every scope without one, or the system key's. */
const rotationPolicyTarget = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('scope'), custodian, namespace }),
  z.strictObject({ kind: z.literal('default') }),
  z.strictObject({ kind: z.literal('system') }),
]);
/** A policy's durations: whole milliseconds, 1 s to 10 years (what `--period 90d` parses to). */
const policyDuration = z
  .number()
  .int()
  .min(1000)
  .max(3650 * 86_400_000);

export const eventDataSchemas = {
  KeyManagementEnabled: z.strictObject({ ...scoped, key: keyRecordSchema, previousKeyId: keyId.nullable() }),
  KeyManagementEnableFailed: z.strictObject({
    ...scoped,
    marker: z.enum(['FAILED', 'DISABLED']),
    providerState: providerKeyState,
  }),
  KeyManagementDisabled: z.strictObject({ ...scoped, deactivatedKeyIds: z.array(keyId) }),
  ManagedKeyRotated: z.strictObject({ ...scoped, key: keyRecordSchema, previousKeyId: keyId.nullable() }),
  ManagedKeySet: z.strictObject({ ...scoped, key: keyRecordSchema, previousKeyId: keyId.nullable() }),
  ManagedKeyDisabled: z.strictObject({ ...scoped, keyId, previousState: keyState }),
  /**
   * A key that existed before the ledger (e.g. an old master key or per-table key in a keystore),
   * recorded as ACTIVE (it then replaces the ACTIVE key, as set does) or INACTIVE (decrypt only).
   * `origin` says where it came from: the keystore alias and the key's checksum, never its bytes.
   */
  ManagedKeyImported: z.strictObject({
    ...scoped,
    key: keyRecordSchema,
    state: z.enum(['ACTIVE', 'INACTIVE']),
    previousKeyId: keyId.nullable(),
    origin: z.strictObject({ alias: z.string().min(1).max(255), checksum: hex16 }),
  }),
  ManagedKeyReenabled: z.strictObject({ ...scoped, keyId }),
  /**
   * The key with this checksum belongs to this scope (stream `<prefix>keyclaim-<checksum>`,
   * src/domain/decideKeyClaim.ts): written by import-managed-key before ManagedKeyImported, at
   * expected revision "no stream", so two imports of one key into two scopes cannot both stand.
   */
  ManagedKeyClaimed: z.strictObject({ ...scoped, keyId, checksum: hex16 }),
  ManagedKeyRefreshed: z.strictObject({
    ...scoped,
    keyId,
    previousState: keyState,
    state: keyState,
    providerState: providerKeyState,
  }),
  /** Crypto-shredding (docs/audit.md): an INACTIVE or DISABLED key is to be destroyed at `dueAt`. */
  ManagedKeyDestructionScheduled: z.strictObject({
    ...scoped,
    keyId,
    /** The key's state when scheduled; scheduling itself leaves the state alone. */
    state: destroyableState,
    dueAt: isoDatetime(),
  }),
  ManagedKeyDestructionCancelled: z.strictObject({ ...scoped, keyId, dueAt: isoDatetime() }),
  /** The key is DESTROYED and its wrapped material deleted from the store; the receipt says what went. */
  ManagedKeyDestroyed: z.strictObject({
    ...scoped,
    keyId,
    metadataHash,
    previousState: destroyableState,
    /**
     * The system key the key's material was last wrapped under, as the destruction read it. The
     * fold takes a DESTROYED key's stkIdentity from here: the material events that moved it (a
     * rewrap) are deleted with the stream, so a rebuild would otherwise answer differently from a
     * view that saw them. Absent on events written before it existed.
     */
    stkIdentity: hex16.optional(),
    receipt: z.strictObject({
      /** The deleted stream, and how many events (wrapped copies: ciphertext only) it held. */
      materialStream: z.string().min(1).max(512),
      materialEvents: count,
      /** SHA-256 (hex) over those events' ids and wrapped ciphertexts, as docs/audit.md defines it. */
      materialHash: sha256Hex,
      scheduledAt: isoDatetime(),
      dueAt: isoDatetime(),
    }),
  }),
  CacheEntryEjected: z.strictObject({ ...scoped, keyId: keyId.nullable() }),
  CacheCleared: z.strictObject({}),
  /** The first system key, recorded when the ledger is initialised. */
  SystemKeyRecorded: systemKeyData,
  SystemKeyRotated: systemKeyData,
  KeyMaterialWrapped: z.strictObject({
    ...scoped,
    keyId,
    metadataHash,
    stkIdentity: hex16,
    algorithm: z.literal('AES-256-GCM'),
    /** base64 of nonce ‖ ciphertext ‖ tag (docs/formats.md); ciphertext, never plaintext. */
    wrapped: z.string().min(1).max(1024),
  }),
  /** A system key no wrapped material references any more: never fetched or wrapped under again. */
  SystemKeyRetired: z.strictObject({
    identity: hex16,
    /** The (latest) sequence the retired key was recorded under. */
    sequence: z.number().int().min(1),
  }),
  /**
   * A retired system key whose objects were destroyed in the provider that made them (an HSM's
   * token objects, destroy-stk): nothing it wrapped or MACed can be unwrapped or checked again.
   * `metadata` names the objects as SystemKeyRecorded/Rotated did; who and why are the actor and
   * reason. Written after the provider destroyed them (a crash between leaves a retired key whose
   * objects are gone, and re-running destroy-stk records it).
   */
  SystemKeyDestroyed: z.strictObject({
    identity: hex16,
    sequence: z.number().int().min(1),
    metadata: z.string().min(1).max(4096),
  }),
  /**
   * A rewrap campaign (stream `<prefix>rewrap`): every key's material moves under the target STK,
   * in key id order. `keys` counts the keys with material when the campaign (or pass) began.
   */
  RewrapStarted: z.strictObject({ campaignId, targetStkIdentity: hex16, keys: count }),
  /** A checkpoint after a batch: every key up to `lastKeyId` is done; counts are for the pass. */
  RewrapProgressed: z.strictObject({
    campaignId,
    done: count,
    lastKeyId: keyId,
    rewrapped: count,
    skipped: count,
  }),
  /** The latest STK changed under a running campaign: a new pass towards it, from the first key. */
  RewrapRetargeted: z.strictObject({
    campaignId,
    targetStkIdentity: hex16,
    previousTargetStkIdentity: hex16,
    keys: count,
  }),
  RewrapFinished: z.strictObject({ campaignId, rewrapped: count, skipped: count }),
  /**
   * A legacy re-encryption campaign (stream `<prefix>reencryption`, docs/migration.md): records held
   * elsewhere (a database), encrypted before the ledger under an imported key (`metadataHash`, of
   * the scope), moved into keyledger's envelope under the scope's ACTIVE key, batch by batch.
   * `total` is what the caller said it would visit (null: not said). Never record contents.
   */
  LegacyReencryptionStarted: z.strictObject({
    campaign: legacyCampaign,
    ...scoped,
    keyId,
    metadataHash,
    algorithm: z.literal('aes-256-gcm'),
    total: count.nullable(),
  }),
  /**
   * A checkpoint after a batch the caller has stored: every record up to `lastRecordId` (in the
   * caller's order) is done. Counts are the campaign's so far; `failedIds` are this batch's records
   * that did not authenticate under the legacy key (reported, not retried).
   */
  LegacyReencryptionProgressed: z.strictObject({
    campaign: legacyCampaign,
    batch: z.number().int().min(1),
    lastRecordId: legacyRecordId,
    reencrypted: count,
    failed: count,
    skipped: count,
    failedIds: z.array(legacyRecordId).max(MAX_LEGACY_BATCH),
  }),
  LegacyReencryptionCompleted: z.strictObject({
    campaign: legacyCampaign,
    reencrypted: count,
    failed: count,
    skipped: count,
  }),
  /**
   * An API token of the service (stream `<prefix>tokens`, docs/audit.md): who it speaks for and
   * what it may do. Only SHA-256 (hex) of the token's secret is recorded, never the token.
   */
  ApiTokenCreated: z.strictObject({
    tokenId,
    principal: z.string().regex(PRINCIPAL_NAME),
    grants: z.array(recordedGrant).min(1).max(64),
    hash: sha256Hex,
    expiresAt: isoDatetime().nullable(),
  }),
  /** The token no longer authenticates anyone; who revoked it is the event's actor. */
  ApiTokenRevoked: z.strictObject({ tokenId }),
  /**
   * A rotation policy (stream `<prefix>policies`, docs/audit.md): rotate the target's ACTIVE key
   * once it has been ACTIVE for `periodMs`, and (scopes) disable INACTIVE keys after
   * `disableInactiveAfterMs`. Setting it again replaces it; who and why are the event's metadata.
   */
  RotationPolicySet: z.strictObject({
    target: rotationPolicyTarget,
    periodMs: policyDuration,
    disableInactiveAfterMs: policyDuration.nullable(),
  }),
  /** The target has no policy of its own any more (a scope then follows the default, if any). */
  RotationPolicyCleared: z.strictObject({ target: rotationPolicyTarget }),
  /**
   * Tamper evidence (stream `<prefix>checkpoints`, docs/audit.md): the head of every stream written
   * in (previousPosition, coveredPosition], MACed under system key `stkIdentity`. Positions and
   * revisions are decimal strings (bigints).
   */
  LedgerCheckpointed: z.strictObject({
    previousPosition: decimalString,
    coveredPosition: decimalString,
    heads: z.array(
      z.strictObject({
        stream: z.string().min(1).max(512),
        revision: decimalString,
        position: decimalString,
        hash: sha256Hex,
      }),
    ),
    stkIdentity: hex16,
    mac: sha256Hex,
  }),
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
