import { checkRecordId, type LegacyCampaign } from '../domain/decideLegacyReencryption.js';
import { KeyledgerError } from '../domain/errors.js';
import { formatScope } from '../domain/identities.js';
import { MAX_LEGACY_BATCH } from '../domain/legacyReencryptionEventSchemas.js';
import type { LegacyReencryptions } from './legacyReencryption.js';
import type { OperationOptions } from './operationOptions.js';

/** One record held elsewhere, in the legacy layout: its id in the caller's store, bytes, AAD. */
export interface LegacyRecord {
  readonly id: string;
  readonly data: Uint8Array;
  /** The AAD it was encrypted with; the new envelope is bound to the same AAD. */
  readonly aad?: Uint8Array;
}

/**
 * What became of one record. `reencrypted`: the new envelope (message format, ledger.envelope
 * decrypts it) to store in its place. `failed`: it did not authenticate under the legacy key
 * (corrupt, wrong key or AAD): ERR_DECRYPTION_FAILED, nothing else said. `skipped`: it is in
 * keyledger's envelope already (a batch stored again after a crash before its checkpoint).
 */
export type LegacyRecordResult =
  | { readonly id: string; readonly status: 'reencrypted'; readonly envelope: Buffer }
  | { readonly id: string; readonly status: 'failed'; readonly code: 'ERR_DECRYPTION_FAILED' }
  | { readonly id: string; readonly status: 'skipped' };

export interface ReencryptedBatch {
  readonly campaign: string;
  /** The batch's number: the checkpoint this batch records. */
  readonly batch: number;
  readonly lastRecordId: string;
  readonly results: readonly LegacyRecordResult[];
}

/** A campaign as results show it. */
export interface LegacyCampaignInfo {
  readonly campaign: string;
  readonly scope: string;
  readonly keyId: string;
  readonly metadataHash: string;
  readonly total: number | null;
  readonly batches: number;
  /** Where to continue: the records after this one (the caller's order); null: from the first. */
  readonly lastRecordId: string | null;
  readonly reencrypted: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failedIds: readonly string[];
  readonly completed: boolean;
  readonly startedAt: string;
  readonly updatedAt: string;
}

export function infoOf(c: LegacyCampaign): LegacyCampaignInfo {
  return {
    campaign: c.campaign,
    scope: formatScope({ custodian: c.custodian, namespace: c.namespace }),
    keyId: c.keyId,
    metadataHash: c.metadataHash,
    total: c.total,
    batches: c.batches,
    lastRecordId: c.lastRecordId,
    reencrypted: c.reencrypted,
    failed: c.failed,
    skipped: c.skipped,
    failedIds: c.failedIds,
    completed: c.completed,
    startedAt: c.startedAt,
    updatedAt: c.updatedAt,
  };
}

/**
 * One campaign being run: `reencrypt` a batch (no event), store its envelopes in place of the
 * records, then `checkpoint` it; `run` does the three in order. A crash between storing and the
 * checkpoint only makes the batch come round again: its records are then in keyledger's envelope
 * already and come back `skipped`.
 */
export class LegacyReencryption {
  readonly #owner: LegacyReencryptions;
  readonly #options: OperationOptions;
  readonly name: string;

  constructor(owner: LegacyReencryptions, name: string, options: OperationOptions) {
    this.#owner = owner;
    this.name = name;
    this.#options = {
      ...(options.actor === undefined ? {} : { actor: options.actor }),
      ...(options.reason === undefined ? {} : { reason: options.reason }),
    };
  }

  /** The campaign as recorded now; `lastRecordId` is where to continue after. */
  async info(): Promise<LegacyCampaignInfo> {
    return infoOf(await this.#owner.campaignNow(this.name));
  }

  /**
   * Re-encrypts a batch (1 to 1000 records, in the caller's order). A record that does not
   * authenticate is reported by id and the rest go on; a key no longer usable (disabled meanwhile)
   * stops with ERR_LEGACY_KEY_UNUSABLE. Records nothing: checkpoint the batch once stored.
   */
  async reencrypt(records: readonly LegacyRecord[]): Promise<ReencryptedBatch> {
    if (!Array.isArray(records) || records.length === 0 || records.length > MAX_LEGACY_BATCH) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', `a batch has 1 to ${MAX_LEGACY_BATCH} records`, {
        records: Array.isArray(records) ? records.length : null,
      });
    }
    for (const r of records) {
      checkRecordId(r?.id);
      if (!(r.data instanceof Uint8Array)) throw new TypeError('a record’s data is a Uint8Array');
      if (r.aad !== undefined && !(r.aad instanceof Uint8Array)) throw new TypeError('aad is a Uint8Array');
    }
    const campaign = assertOpen(await this.#owner.campaignNow(this.name));
    const results = await this.#owner.reencryptBatch(campaign, records);
    return {
      campaign: this.name,
      batch: campaign.batches + 1,
      lastRecordId: (records.at(-1) as LegacyRecord).id,
      results,
    };
  }

  /** Records the batch as done (after the caller stored its envelopes): progress and failures by id. */
  async checkpoint(batch: ReencryptedBatch): Promise<LegacyCampaignInfo> {
    const count = (status: LegacyRecordResult['status']) =>
      batch.results.filter((r) => r.status === status).length;
    const recorded = await this.#owner.record(
      {
        type: 'RecordLegacyProgress',
        campaign: this.name,
        batch: batch.batch,
        lastRecordId: batch.lastRecordId,
        reencrypted: count('reencrypted'),
        skipped: count('skipped'),
        failedIds: batch.results.filter((r) => r.status === 'failed').map((r) => r.id),
      },
      this.#options,
    );
    return infoOf(recorded);
  }

  /** reencrypt → `store` (the caller writes the envelopes) → checkpoint. */
  async run(
    records: readonly LegacyRecord[],
    store: (batch: ReencryptedBatch) => Promise<void>,
  ): Promise<{ readonly batch: ReencryptedBatch; readonly progress: LegacyCampaignInfo }> {
    const batch = await this.reencrypt(records);
    await store(batch);
    return { batch, progress: await this.checkpoint(batch) };
  }

  /** Records the campaign complete (every record visited); the counts are the recorded ones. */
  async complete(): Promise<LegacyCampaignInfo> {
    return infoOf(
      await this.#owner.record({ type: 'CompleteLegacyReencryption', campaign: this.name }, this.#options),
    );
  }
}

function assertOpen(campaign: LegacyCampaign): LegacyCampaign {
  if (campaign.completed) {
    throw new KeyledgerError(
      'ERR_REENCRYPTION_COMPLETED',
      `re-encryption campaign ${campaign.campaign} has completed`,
      { campaign: campaign.campaign },
    );
  }
  return campaign;
}
