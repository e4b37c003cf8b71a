import { z } from 'zod';
import {
  count,
  destroyableState,
  hex16,
  keyId,
  keyRecordSchema,
  keyState,
  metadataHash,
  providerKeyState,
  scoped,
  sha256Hex,
} from './eventFields.js';
import { isoDatetime } from './fastEventChecks.js';

/**
 * The schemas of a scope's events (stream `<prefix>scope-…`): its key management lifecycle, the
 * keys set, imported, disabled, refreshed and destroyed in it, and the claim an import writes
 * first (stream `<prefix>keyclaim-<checksum>`). Apart from events.ts, which assembles every
 * family into the one table stored events are parsed by, so each family's file holds only its own.
 */

export const scopeEventSchemas = {
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
} as const;
