import { KeyledgerError } from './errors.js';
import type { EventOf, RewrapEvent } from './events.js';
import type { KeyId } from './identities.js';

/**
 * The rules of STK rewrap campaigns and of retiring a system key, as a pure decider.
 *
 * A campaign moves every key's wrapped material under one target STK (the latest one), visiting
 * the keys in key id order and recording a checkpoint (`lastKeyId`) after every batch, so an
 * interrupted campaign resumes right after its checkpoint. Decisions made here:
 *
 * - One campaign at a time: starting one while another is unfinished is refused
 *   (ERR_REWRAP_IN_PROGRESS, naming it): resume that one instead.
 * - Nothing to do (every key's material already under the latest STK): start records nothing.
 * - The target is always the latest STK. When a newer STK is recorded under a running campaign,
 *   the campaign is retargeted (RewrapRetargeted): a new pass towards the new STK from the first key,
 *   since keys already moved sit under the old target. Progress or finish for a stale target is
 *   refused (ERR_REWRAP_TARGET_CHANGED) so a runner that missed the rotation retargets first.
 * - A checkpoint at or before the recorded one records nothing (a concurrent runner got there
 *   first); a campaign finishes only when no key is left after its checkpoint.
 * - A system key may be retired only when it is recorded, not already retired, not the latest STK,
 *   not the target of an unfinished campaign, and no key's latest material is wrapped under it.
 */

export interface RewrapCampaign {
  readonly campaignId: string;
  readonly targetStkIdentity: string;
  /** Keys the current pass visits (every key with material when it began). */
  readonly keys: number;
  /** Keys visited so far in the current pass: rewrapped + skipped. */
  readonly done: number;
  readonly rewrapped: number;
  readonly skipped: number;
  /** The checkpoint: every key up to this one (key id order) is done in the current pass. */
  readonly lastKeyId: KeyId | null;
  /** 1, plus one per retarget. */
  readonly pass: number;
  readonly finished: boolean;
  readonly startedAt: string;
  readonly updatedAt: string;
}

/** The fold of the rewrap stream: every campaign, oldest first. */
export interface RewrapState {
  readonly campaigns: ReadonlyMap<string, RewrapCampaign>;
  /** The unfinished campaign, if any (there is at most one). */
  readonly openCampaignId: string | null;
  /** Revision of the last event folded in; null for an empty stream. */
  readonly revision: bigint | null;
}

export function emptyRewrapState(): RewrapState {
  return { campaigns: new Map(), openCampaignId: null, revision: null };
}

export function openCampaign(state: RewrapState): RewrapCampaign | null {
  return state.openCampaignId === null ? null : (state.campaigns.get(state.openCampaignId) ?? null);
}

/** Folds one rewrap event; `at` is its occurredAt and `revision` its stream revision. */
export function evolveRewrap(
  state: RewrapState,
  event: RewrapEvent,
  at: string,
  revision: bigint,
): RewrapState {
  const campaigns = new Map(state.campaigns);
  let open = state.openCampaignId;
  const id = event.data.campaignId;
  const known = campaigns.get(id);
  switch (event.type) {
    case 'RewrapStarted':
      campaigns.set(id, {
        campaignId: id,
        targetStkIdentity: event.data.targetStkIdentity,
        keys: event.data.keys,
        done: 0,
        rewrapped: 0,
        skipped: 0,
        lastKeyId: null,
        pass: 1,
        finished: false,
        startedAt: at,
        updatedAt: at,
      });
      open = id;
      break;
    case 'RewrapProgressed':
      if (known !== undefined) {
        const { done, lastKeyId, rewrapped, skipped } = event.data;
        campaigns.set(id, { ...known, done, lastKeyId, rewrapped, skipped, updatedAt: at });
      }
      break;
    case 'RewrapRetargeted':
      if (known !== undefined) {
        campaigns.set(id, {
          ...known,
          targetStkIdentity: event.data.targetStkIdentity,
          keys: event.data.keys,
          done: 0,
          rewrapped: 0,
          skipped: 0,
          lastKeyId: null,
          pass: known.pass + 1,
          updatedAt: at,
        });
      }
      break;
    case 'RewrapFinished':
      if (known !== undefined) {
        const { rewrapped, skipped } = event.data;
        campaigns.set(id, { ...known, rewrapped, skipped, finished: true, updatedAt: at });
      }
      if (open === id) open = null;
      break;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
  return { campaigns, openCampaignId: open, revision };
}

export type RewrapCommand =
  | {
      readonly type: 'StartRewrap';
      readonly campaignId: string;
      /** The latest recorded STK: the campaign's target. */
      readonly latestStkIdentity: string;
      /** Keys with material (not DESTROYED): what the campaign will visit. */
      readonly keys: number;
      /** Of those, the ones whose material is under another STK than the latest. */
      readonly pending: number;
    }
  | {
      readonly type: 'RetargetRewrap';
      readonly campaignId: string;
      readonly latestStkIdentity: string;
      readonly keys: number;
    }
  | {
      readonly type: 'RecordRewrapProgress';
      readonly campaignId: string;
      /** The STK the batch wrapped under. */
      readonly targetStkIdentity: string;
      /** The last key of the batch (key id order). */
      readonly lastKeyId: KeyId;
      /** Keys of the batch wrapped anew (or found wrapped by this campaign already). */
      readonly rewrapped: number;
      /** Keys of the batch that needed nothing (already under the target, destroyed, no material). */
      readonly skipped: number;
    }
  | {
      readonly type: 'FinishRewrap';
      readonly campaignId: string;
      readonly targetStkIdentity: string;
      /** Keys with material after the checkpoint (must be none). */
      readonly remaining: number;
    };

/** Decides the events of one rewrap command against the state of the rewrap stream. */
export function decideRewrap(state: RewrapState, command: RewrapCommand): RewrapEvent[] {
  switch (command.type) {
    case 'StartRewrap':
      return decideStart(state, command);
    case 'RetargetRewrap': {
      const campaign = assertResumable(state, command.campaignId);
      if (campaign.targetStkIdentity === command.latestStkIdentity) return [];
      return [
        {
          type: 'RewrapRetargeted',
          data: {
            campaignId: campaign.campaignId,
            targetStkIdentity: command.latestStkIdentity,
            previousTargetStkIdentity: campaign.targetStkIdentity,
            keys: checkCount(command.keys, 'keys'),
          },
        },
      ];
    }
    case 'RecordRewrapProgress': {
      const campaign = assertResumable(state, command.campaignId);
      assertTarget(campaign, command.targetStkIdentity);
      const rewrapped = checkCount(command.rewrapped, 'rewrapped');
      const skipped = checkCount(command.skipped, 'skipped');
      if (rewrapped + skipped === 0) {
        throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'a rewrap batch has at least one key', {
          campaignId: campaign.campaignId,
        });
      }
      // A checkpoint at or before the recorded one: a concurrent runner recorded this batch first.
      if (campaign.lastKeyId !== null && command.lastKeyId <= campaign.lastKeyId) return [];
      return [
        {
          type: 'RewrapProgressed',
          data: {
            campaignId: campaign.campaignId,
            done: campaign.done + rewrapped + skipped,
            lastKeyId: command.lastKeyId,
            rewrapped: campaign.rewrapped + rewrapped,
            skipped: campaign.skipped + skipped,
          },
        },
      ];
    }
    case 'FinishRewrap': {
      const campaign = assertResumable(state, command.campaignId);
      assertTarget(campaign, command.targetStkIdentity);
      if (command.remaining > 0) {
        throw new KeyledgerError(
          'ERR_INVALID_TRANSITION',
          `rewrap campaign ${campaign.campaignId} still has ${command.remaining} keys after its checkpoint`,
          { campaignId: campaign.campaignId, remaining: command.remaining },
        );
      }
      return [
        {
          type: 'RewrapFinished',
          data: { campaignId: campaign.campaignId, rewrapped: campaign.rewrapped, skipped: campaign.skipped },
        },
      ];
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

function decideStart(state: RewrapState, command: Extract<RewrapCommand, { type: 'StartRewrap' }>) {
  const open = openCampaign(state);
  if (open !== null) {
    throw new KeyledgerError(
      'ERR_REWRAP_IN_PROGRESS',
      `rewrap campaign ${open.campaignId} is unfinished; resume it instead of starting another`,
      { campaignId: open.campaignId, targetStkIdentity: open.targetStkIdentity },
    );
  }
  if (state.campaigns.has(command.campaignId)) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `rewrap campaign ${command.campaignId} exists already`, {
      campaignId: command.campaignId,
    });
  }
  const keys = checkCount(command.keys, 'keys');
  if (checkCount(command.pending, 'pending') === 0) return [];
  const started: EventOf<'RewrapStarted'> = {
    type: 'RewrapStarted',
    data: { campaignId: command.campaignId, targetStkIdentity: command.latestStkIdentity, keys },
  };
  return [started];
}

/** The campaign `campaignId` if it can run: it exists and is unfinished. */
export function assertResumable(state: RewrapState, campaignId: string): RewrapCampaign {
  const campaign = state.campaigns.get(campaignId);
  if (campaign === undefined) {
    throw new KeyledgerError('ERR_REWRAP_NOT_FOUND', `no rewrap campaign ${campaignId}`, { campaignId });
  }
  if (campaign.finished) {
    throw new KeyledgerError('ERR_REWRAP_FINISHED', `rewrap campaign ${campaignId} has finished`, {
      campaignId,
    });
  }
  return campaign;
}

function assertTarget(campaign: RewrapCampaign, targetStkIdentity: string): void {
  if (campaign.targetStkIdentity !== targetStkIdentity) {
    throw new KeyledgerError(
      'ERR_REWRAP_TARGET_CHANGED',
      `rewrap campaign ${campaign.campaignId} now targets system key ${campaign.targetStkIdentity}`,
      { campaignId: campaign.campaignId, targetStkIdentity: campaign.targetStkIdentity },
    );
  }
}

function checkCount(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${name} must be a count`, { [name]: String(value) });
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Which keys a campaign visits

/** What the keymeta view says of one key's latest material. */
export interface MaterialFact {
  readonly keyId: KeyId;
  readonly stkIdentity: string;
  /** The key is DESTROYED: its material is never used again, so it is neither moved nor counted. */
  readonly destroyed: boolean;
}

/** The keys a campaign visits, in key id order: every key with material that is not DESTROYED. */
export function rewrapKeyOrder(materials: Iterable<MaterialFact>): KeyId[] {
  const ids: KeyId[] = [];
  for (const m of materials) if (!m.destroyed) ids.push(m.keyId);
  return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** How many of the visited keys have material under another STK than `target`. */
export function pendingRewraps(materials: Iterable<MaterialFact>, target: string): number {
  let n = 0;
  for (const m of materials) if (!m.destroyed && m.stkIdentity !== target) n++;
  return n;
}

/** How many keys' latest material is wrapped under `identity` (DESTROYED keys do not count). */
export function keysReferencing(materials: Iterable<MaterialFact>, identity: string): number {
  let n = 0;
  for (const m of materials) if (!m.destroyed && m.stkIdentity === identity) n++;
  return n;
}

/** The index of the first key after the checkpoint in `order` (sorted). */
export function indexAfter(order: readonly KeyId[], after: KeyId | null): number {
  if (after === null) return 0;
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((order[mid] as KeyId) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The next batch: up to `size` keys of `order` after the checkpoint. */
export function nextRewrapBatch(order: readonly KeyId[], after: KeyId | null, size: number): KeyId[] {
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'the batch size must be a positive integer', {
      batchSize: String(size),
    });
  }
  const from = indexAfter(order, after);
  return order.slice(from, from + size);
}

// ---------------------------------------------------------------------------------------------
// Retiring a system key

export interface RetireFacts {
  /** The identity to retire. */
  readonly identity: string;
  /** Every recorded system key, in sequence order (the last is the latest). */
  readonly systemKeys: readonly {
    readonly sequence: number;
    readonly identity: string;
    readonly retired: boolean;
  }[];
  /** Keys whose latest material is wrapped under `identity` (DESTROYED keys excluded). */
  readonly referencingKeys: number;
  /** The unfinished rewrap campaign, if any. */
  readonly openCampaign: { readonly campaignId: string; readonly targetStkIdentity: string } | null;
}

export function decideRetireSystemKey(facts: RetireFacts): EventOf<'SystemKeyRetired'>[] {
  const { identity } = facts;
  const latest = facts.systemKeys.at(-1);
  if (latest === undefined) {
    throw new KeyledgerError('ERR_LEDGER_NOT_INITIALISED', 'the ledger has no system key yet; run init', {});
  }
  const recorded = facts.systemKeys.filter((k) => k.identity === identity);
  const last = recorded.at(-1);
  if (last === undefined) {
    throw new KeyledgerError('ERR_SYSTEM_KEY_NOT_FOUND', `no system key ${identity} is recorded`, {
      identity,
    });
  }
  if (recorded.some((k) => k.retired)) {
    throw new KeyledgerError(
      'ERR_SYSTEM_KEY_ALREADY_RETIRED',
      `system key #${last.sequence} (${identity}) is retired already`,
      { identity, sequence: last.sequence },
    );
  }
  if (latest.identity === identity) {
    throw new KeyledgerError(
      'ERR_SYSTEM_KEY_CURRENT',
      `system key #${latest.sequence} (${identity}) is the current one: rotate to a new one and rewrap first`,
      { identity, sequence: latest.sequence },
    );
  }
  if (facts.openCampaign !== null && facts.openCampaign.targetStkIdentity === identity) {
    throw new KeyledgerError(
      'ERR_SYSTEM_KEY_IN_USE',
      `system key ${identity} is the target of unfinished rewrap campaign ${facts.openCampaign.campaignId}; resume it first`,
      { identity, campaignId: facts.openCampaign.campaignId, keys: facts.referencingKeys },
    );
  }
  if (facts.referencingKeys > 0) {
    throw new KeyledgerError(
      'ERR_SYSTEM_KEY_IN_USE',
      `${facts.referencingKeys} keys are still wrapped under system key #${last.sequence} (${identity}); run a rewrap first`,
      { identity, sequence: last.sequence, keys: facts.referencingKeys },
    );
  }
  return [{ type: 'SystemKeyRetired', data: { identity, sequence: last.sequence } }];
}
