import { z } from 'zod';
import { count, keyId, metadataHash, scoped } from './eventFields.js';

/**
 * The schemas of a legacy re-encryption campaign's events (stream `<prefix>reencryption`,
 * src/domain/decideLegacyReencryption.ts) and the limits on campaign names, record ids and batches
 * they carry. Apart from events.ts, which assembles every family into the one table stored events
 * are parsed by, so each family's file holds only its own.
 */

/** A legacy re-encryption campaign's name, as the caller chose it. */
export const LEGACY_CAMPAIGN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const legacyCampaign = z.string().regex(LEGACY_CAMPAIGN_NAME);
/** A record's id as the caller's store names it (a primary key, as text). */
export const MAX_LEGACY_RECORD_ID = 256;
const legacyRecordId = z.string().min(1).max(MAX_LEGACY_RECORD_ID);
/** Records per batch of a legacy re-encryption (one checkpoint event each). */
export const MAX_LEGACY_BATCH = 1000;

export const legacyReencryptionEventSchemas = {
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
} as const;
