import { z } from 'zod';
import { count, hex16, keyId } from './eventFields.js';

/**
 * The schemas of a rewrap campaign's events (stream `<prefix>rewrap`, src/domain/decideRewrap.ts)
 * and the shape of a campaign's id. Apart from events.ts, which assembles every family into the
 * one table stored events are parsed by, so each family's file holds only its own.
 */

/** A rewrap campaign's id: a lowercase UUID. */
export const REWRAP_CAMPAIGN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const campaignId = z.string().regex(REWRAP_CAMPAIGN_ID);

export const rewrapEventSchemas = {
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
} as const;
