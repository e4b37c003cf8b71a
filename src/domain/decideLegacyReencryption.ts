import { KeyledgerError } from './errors.js';
import type { EventOf, LegacyReencryptionEvent } from './events.js';
import type { Custodian, KeyId, MetadataHash, Namespace } from './identities.js';
import {
  LEGACY_CAMPAIGN_NAME,
  MAX_LEGACY_BATCH,
  MAX_LEGACY_RECORD_ID,
} from './legacyReencryptionEventSchemas.js';

/**
 * Legacy re-encryption campaigns (docs/migration.md, "Re-encrypt old data"): records encrypted
 * before the ledger, held by the caller (a database), moved into keyledger's envelope batch by
 * batch. The ledger never sees the records' order or store, so a campaign's checkpoint is the id of
 * the last record of the last batch the caller stored, and resuming hands it back. Decisions:
 *
 * - A campaign has a name the caller chooses; a name is used once (a second start is refused).
 * - Several campaigns may run at once (one per table, say): they share nothing but the stream.
 * - A checkpoint names its batch number (the recorded one + 1): a second runner recording the same
 *   batch again records nothing, and a batch out of order is refused, so a resume never skips one.
 * - Records that fail to authenticate are listed by id in their batch's checkpoint and counted; the
 *   campaign goes on. Completing needs no particular count (the total is the caller's estimate).
 */

export interface LegacyCampaign {
  readonly campaign: string;
  readonly custodian: Custodian;
  readonly namespace: Namespace;
  /** The imported key the legacy records are under. */
  readonly keyId: KeyId;
  readonly metadataHash: MetadataHash;
  readonly total: number | null;
  /** Batches recorded so far. */
  readonly batches: number;
  /** The checkpoint: the last record of the last recorded batch (null: none yet). */
  readonly lastRecordId: string | null;
  readonly reencrypted: number;
  readonly failed: number;
  /** Records already in keyledger's envelope (a batch stored again after a crash). */
  readonly skipped: number;
  /** Every failed record's id, oldest batch first. */
  readonly failedIds: readonly string[];
  readonly completed: boolean;
  readonly startedAt: string;
  readonly updatedAt: string;
}

export interface LegacyReencryptionState {
  readonly campaigns: ReadonlyMap<string, LegacyCampaign>;
  /** Revision of the last event folded in; null for an empty stream. */
  readonly revision: bigint | null;
}

export function emptyLegacyReencryptionState(): LegacyReencryptionState {
  return { campaigns: new Map(), revision: null };
}

/** Folds one event of the re-encryption stream; `at` is its occurredAt. */
export function evolveLegacyReencryption(
  state: LegacyReencryptionState,
  event: LegacyReencryptionEvent,
  at: string,
  revision: bigint,
): LegacyReencryptionState {
  const campaigns = new Map(state.campaigns);
  const known = campaigns.get(event.data.campaign);
  switch (event.type) {
    case 'LegacyReencryptionStarted': {
      const d = event.data;
      campaigns.set(d.campaign, {
        campaign: d.campaign,
        custodian: d.custodian,
        namespace: d.namespace,
        keyId: d.keyId,
        metadataHash: d.metadataHash,
        total: d.total,
        batches: 0,
        lastRecordId: null,
        reencrypted: 0,
        failed: 0,
        skipped: 0,
        failedIds: [],
        completed: false,
        startedAt: at,
        updatedAt: at,
      });
      break;
    }
    case 'LegacyReencryptionProgressed':
      if (known !== undefined) {
        const d = event.data;
        campaigns.set(d.campaign, {
          ...known,
          batches: d.batch,
          lastRecordId: d.lastRecordId,
          reencrypted: d.reencrypted,
          failed: d.failed,
          skipped: d.skipped,
          failedIds: [...known.failedIds, ...d.failedIds],
          updatedAt: at,
        });
      }
      break;
    case 'LegacyReencryptionCompleted':
      if (known !== undefined) campaigns.set(known.campaign, { ...known, completed: true, updatedAt: at });
      break;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
  return { campaigns, revision };
}

export type LegacyReencryptionCommand =
  | {
      readonly type: 'StartLegacyReencryption';
      readonly campaign: string;
      readonly custodian: Custodian;
      readonly namespace: Namespace;
      readonly keyId: KeyId;
      readonly metadataHash: MetadataHash;
      readonly total: number | null;
    }
  | {
      readonly type: 'RecordLegacyProgress';
      readonly campaign: string;
      /** The batch this checkpoint is for: the recorded count + 1. */
      readonly batch: number;
      readonly lastRecordId: string;
      readonly reencrypted: number;
      readonly skipped: number;
      readonly failedIds: readonly string[];
    }
  | { readonly type: 'CompleteLegacyReencryption'; readonly campaign: string };

export function decideLegacyReencryption(
  state: LegacyReencryptionState,
  command: LegacyReencryptionCommand,
): LegacyReencryptionEvent[] {
  switch (command.type) {
    case 'StartLegacyReencryption': {
      checkCampaignName(command.campaign);
      if (state.campaigns.has(command.campaign)) {
        throw new KeyledgerError(
          'ERR_INVALID_ARGUMENT',
          `re-encryption campaign ${command.campaign} exists already; resume it, or choose another name`,
          { campaign: command.campaign },
        );
      }
      if (command.total !== null && !(Number.isSafeInteger(command.total) && command.total >= 0)) {
        throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'total must be a count', { total: command.total });
      }
      const started: EventOf<'LegacyReencryptionStarted'> = {
        type: 'LegacyReencryptionStarted',
        data: {
          campaign: command.campaign,
          custodian: command.custodian,
          namespace: command.namespace,
          keyId: command.keyId,
          metadataHash: command.metadataHash,
          algorithm: 'aes-256-gcm',
          total: command.total,
        },
      };
      return [started];
    }
    case 'RecordLegacyProgress': {
      const campaign = assertLegacyResumable(state, command.campaign);
      // A second runner recorded this batch first: nothing more to record.
      if (command.batch === campaign.batches) return [];
      if (command.batch !== campaign.batches + 1) {
        throw new KeyledgerError(
          'ERR_INVALID_TRANSITION',
          `re-encryption campaign ${campaign.campaign} has recorded ${campaign.batches} batches, not ${command.batch - 1}`,
          { campaign: campaign.campaign, batches: campaign.batches, batch: command.batch },
        );
      }
      checkRecordId(command.lastRecordId);
      for (const id of command.failedIds) checkRecordId(id);
      const done = command.reencrypted + command.skipped + command.failedIds.length;
      if (done === 0 || done > MAX_LEGACY_BATCH) {
        throw new KeyledgerError(
          'ERR_INVALID_ARGUMENT',
          `a re-encryption batch has 1 to ${MAX_LEGACY_BATCH} records`,
          { campaign: campaign.campaign, records: done },
        );
      }
      return [
        {
          type: 'LegacyReencryptionProgressed',
          data: {
            campaign: campaign.campaign,
            batch: command.batch,
            lastRecordId: command.lastRecordId,
            reencrypted: campaign.reencrypted + command.reencrypted,
            failed: campaign.failed + command.failedIds.length,
            skipped: campaign.skipped + command.skipped,
            failedIds: [...command.failedIds],
          },
        },
      ];
    }
    case 'CompleteLegacyReencryption': {
      const campaign = assertLegacyResumable(state, command.campaign);
      return [
        {
          type: 'LegacyReencryptionCompleted',
          data: {
            campaign: campaign.campaign,
            reencrypted: campaign.reencrypted,
            failed: campaign.failed,
            skipped: campaign.skipped,
          },
        },
      ];
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/** The campaign if it can go on: it exists and has not completed. */
export function assertLegacyResumable(state: LegacyReencryptionState, campaign: string): LegacyCampaign {
  const known = state.campaigns.get(campaign);
  if (known === undefined) {
    throw new KeyledgerError('ERR_REENCRYPTION_NOT_FOUND', `no re-encryption campaign ${campaign}`, {
      campaign,
    });
  }
  if (known.completed) {
    throw new KeyledgerError(
      'ERR_REENCRYPTION_COMPLETED',
      `re-encryption campaign ${campaign} has completed`,
      { campaign },
    );
  }
  return known;
}

export function checkCampaignName(campaign: string): void {
  if (typeof campaign !== 'string' || !LEGACY_CAMPAIGN_NAME.test(campaign)) {
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      'a campaign name is 1 to 128 letters, digits, ., _ or -, starting with a letter or digit',
      { campaign: String(campaign).slice(0, 64) },
    );
  }
}

export function checkRecordId(id: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_LEGACY_RECORD_ID) {
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      `a record id is a string of 1 to ${MAX_LEGACY_RECORD_ID} characters`,
      { recordId: typeof id === 'string' ? id.slice(0, 64) : typeof id },
    );
  }
}
