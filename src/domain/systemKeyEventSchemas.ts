import { z } from 'zod';
import { hex16, keyId, metadataHash, scoped } from './eventFields.js';

/**
 * The schemas of the system key stream (`<prefix>system`: STKs recorded, rotated, retired,
 * destroyed) and of what is wrapped under those keys (a key's material, `<prefix>material-<keyId>`).
 * Apart from events.ts, which assembles every family into the one table stored events are parsed
 * by, so each family's file holds only its own.
 */

const systemKeyData = z.strictObject({
  sequence: z.number().int().min(1),
  /** The system key's checksum: what wrapped material records to find its STK. */
  identity: hex16,
  metadata: z.string().min(1).max(4096),
  metadataHash,
  previousIdentity: hex16.nullable(),
});

export const systemKeyEventSchemas = {
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
} as const;
