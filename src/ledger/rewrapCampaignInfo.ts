import type { RewrapCampaign } from '../domain/decideRewrap.js';

/**
 * What RewrapCampaigns answers: a campaign as recorded on the rewrap stream, a run's result, and
 * the status of every system key and campaign; plain data for the operation table and the package.
 * Apart from rewrapCampaign.ts, which runs campaigns, so that the shapes callers read are not
 * buried in the runner.
 */

/** A campaign as recorded on the rewrap stream. */
export interface RewrapCampaignInfo {
  readonly campaignId: string;
  readonly targetStkIdentity: string;
  /** 1, plus one per retarget (a newer STK recorded while the campaign ran). */
  readonly pass: number;
  /** Keys this pass visits (every key with material when it began). */
  readonly keys: number;
  /** Keys visited so far in this pass: rewrapped + skipped. */
  readonly done: number;
  readonly rewrapped: number;
  readonly skipped: number;
  /** The checkpoint: resuming continues after this key (key id order). */
  readonly lastKeyId: string | null;
  readonly finished: boolean;
  readonly startedAt: string;
  readonly updatedAt: string;
}

export interface RewrapResult {
  /**
   * `finished`: every key visited; `paused`: stopped at a batch boundary (maxBatches, signal), resume
   * it later; `up-to-date`: every key's material was already under the latest STK, nothing started.
   */
  readonly status: 'finished' | 'paused' | 'up-to-date';
  readonly campaign: RewrapCampaignInfo | null;
  /**
   * Keys whose material is still under another STK than the latest one. 0 after a finish, unless
   * keys were written under an older STK while the campaign ran (another campaign moves them).
   */
  readonly remaining: number;
}

export interface SystemKeyUsage {
  readonly sequence: number;
  readonly identity: string;
  readonly current: boolean;
  readonly retiredAt: string | null;
  /** Keys whose latest material is wrapped under this STK (DESTROYED keys excluded). */
  readonly keys: number;
}

export interface RewrapStatus {
  readonly latestStkIdentity: string | null;
  readonly systemKeys: readonly SystemKeyUsage[];
  /** Keys whose material is under another STK than the latest one. */
  readonly pending: number;
  /** The unfinished campaign, if any. */
  readonly open: RewrapCampaignInfo | null;
  /** Every campaign, oldest first. */
  readonly campaigns: readonly RewrapCampaignInfo[];
}

/** A campaign of the decider's fold as callers see it. */
export function campaignInfo(c: RewrapCampaign): RewrapCampaignInfo {
  return {
    campaignId: c.campaignId,
    targetStkIdentity: c.targetStkIdentity,
    pass: c.pass,
    keys: c.keys,
    done: c.done,
    rewrapped: c.rewrapped,
    skipped: c.skipped,
    lastKeyId: c.lastKeyId,
    finished: c.finished,
    startedAt: c.startedAt,
    updatedAt: c.updatedAt,
  };
}
