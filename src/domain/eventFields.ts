import { z } from 'zod';
import { HEX16, SHA256_HEX } from './fastEventChecks.js';
import type { Custodian, KeyId, MetadataHash, Namespace } from './identities.js';
import { parseCustodian, parseKeyId, parseMetadataHash, parseNamespace } from './identities.js';
import { DESTROYABLE_KEY_STATES, KEY_STATES, PROVIDER_KEY_STATES } from './keyState.js';

/**
 * The field schemas the event schemas of every family share (identities parsed into their branded
 * types, hex digests, counts, key states) and the key record several events carry. They live apart
 * from the families (scopeEventSchemas.ts, systemKeyEventSchemas.ts, …) so that each family's file
 * holds only its own events, and a field means the same thing in every event that has it.
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

export const custodian = branded<Custodian>(parseCustodian);
export const namespace = branded<Namespace>(parseNamespace);
export const keyId = branded<KeyId>(parseKeyId);
export const metadataHash = branded<MetadataHash>(parseMetadataHash);
export const hex16 = z.string().regex(HEX16);
export const keyState = z.enum(KEY_STATES);
export const count = z.number().int().min(0);
export const providerKeyState = z.enum(PROVIDER_KEY_STATES);
/** A bigint as JSON holds it: a decimal string without leading zeros. */
export const decimalString = z.string().regex(/^(0|[1-9][0-9]{0,19})$/);
export const sha256Hex = z.string().regex(SHA256_HEX);
export const destroyableState = z.enum(DESTROYABLE_KEY_STATES);

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

export const scoped = { custodian, namespace };
