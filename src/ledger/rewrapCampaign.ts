import { randomUUID } from 'node:crypto';
import {
  assertResumable,
  decideRewrap,
  emptyRewrapState,
  evolveRewrap,
  keysReferencing,
  type MaterialFact,
  nextRewrapBatch,
  openCampaign,
  pendingRewraps,
  type RewrapCampaign,
  type RewrapCommand,
  type RewrapState,
  rewrapKeyOrder,
} from '../domain/decideRewrap.js';
import { isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import { parseEventOf, REWRAP_EVENT_TYPES, type RewrapEvent } from '../domain/events.js';
import type { KeyId } from '../domain/identities.js';
import { REWRAP_CAMPAIGN_ID } from '../domain/rewrapEventSchemas.js';
import { decideAndAppend, expectedAfter, type Journal } from '../journal/decideAndAppend.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { LedgerProjector } from './ledgerProjector.js';
import { MaterialRewrap } from './materialRewrap.js';
import type { OperationOptions } from './operationOptions.js';
import { campaignInfo, type RewrapResult, type RewrapStatus } from './rewrapCampaignInfo.js';
import { checkBatchSize, type RewrapOptions } from './rewrapOptions.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';
import type { DestroyResult, RetireResult, SystemKeyLifecycle } from './systemKeyLifecycle.js';

interface RewrapDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
  readonly systemKeys: SystemKeyHandles;
  readonly lifecycle: SystemKeyLifecycle;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
}

/**
 * STK rewrap campaigns (`ledger.rewrap`): move every key's wrapped material under the latest
 * system key, so older system keys can be retired. The rules are the pure decider's
 * (src/domain/decideRewrap.ts); this runs them against the store.
 *
 * A campaign visits keys in batches, one checkpoint event per batch; each key's step is
 * MaterialRewrap's (src/ledger/materialRewrap.ts). How a caller runs one is rewrapOptions.ts; what
 * it answers, rewrapCampaignInfo.ts.
 */
export class RewrapCampaigns {
  readonly #d: RewrapDeps;
  readonly #stream: string;
  readonly #material: MaterialRewrap;
  #state: RewrapState = emptyRewrapState();

  constructor(deps: RewrapDeps) {
    this.#d = deps;
    this.#stream = deps.names.rewrap;
    this.#material = new MaterialRewrap({ ...deps, keyOf: (keyId) => this.#keyOf(keyId) });
  }

  /**
   * Starts a campaign towards the latest STK and runs it. Refused while another campaign is
   * unfinished (ERR_REWRAP_IN_PROGRESS); nothing is recorded when every key is already there.
   */
  async start(options: RewrapOptions = {}): Promise<RewrapResult> {
    const batchSize = checkBatchSize(options);
    const campaignId = randomUUID();
    const context = this.#contextFor(options, campaignId);
    // Fails early when the ledger has no STK or the provider cannot supply the target.
    const target = (await this.#d.systemKeys.current()).identity;
    await this.#catchUp();
    const facts = this.#materialFacts();
    const events = await this.#decideAndAppend(
      () => ({
        type: 'StartRewrap',
        campaignId,
        latestStkIdentity: target,
        keys: rewrapKeyOrder(facts).length,
        pending: pendingRewraps(facts, target),
      }),
      context,
    );
    if (events.length === 0) return { status: 'up-to-date', campaign: null, remaining: 0 };
    return this.#run(campaignId, context, batchSize, options);
  }

  /** Continues an unfinished campaign after its checkpoint (retargeting it if the STK changed). */
  async resume(campaignId: string, options: RewrapOptions = {}): Promise<RewrapResult> {
    if (!REWRAP_CAMPAIGN_ID.test(campaignId)) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'a rewrap campaign id is a lowercase UUID', {
        campaignId: campaignId.slice(0, 64),
      });
    }
    const batchSize = checkBatchSize(options);
    const context = this.#contextFor(options, campaignId);
    await this.#d.systemKeys.current();
    assertResumable(await this.#load(), campaignId);
    return this.#run(campaignId, context, batchSize, options);
  }

  /** Which STK each key's material is under, and every campaign. */
  async status(): Promise<RewrapStatus> {
    await this.#catchUp();
    const state = await this.#load();
    const facts = this.#materialFacts();
    const view = this.#d.projector.systemKeys;
    const latest = view.latest?.identity ?? null;
    const open = openCampaign(state);
    return {
      latestStkIdentity: latest,
      systemKeys: view.keys.map((k) => ({
        sequence: k.sequence,
        identity: k.identity,
        current: k.identity === latest,
        retiredAt: k.retiredAt,
        keys: keysReferencing(facts, k.identity),
      })),
      pending: latest === null ? 0 : pendingRewraps(facts, latest),
      open: open === null ? null : campaignInfo(open),
      campaigns: [...state.campaigns.values()].map(campaignInfo),
    };
  }

  /**
   * Destroys a retired system key in the provider that made it and records SystemKeyDestroyed
   * (SystemKeyLifecycle.destroyRetired, which says when it is refused).
   */
  destroyRetiredSystemKey(identity: string, options?: OperationOptions): Promise<DestroyResult> {
    return this.#d.lifecycle.destroyRetired(identity, this.#d.context(options));
  }

  /**
   * Retires a system key (SystemKeyLifecycle.retire, which says when it is refused): the campaigns
   * say whether any key's material is still under it or an unfinished campaign targets it.
   */
  retireSystemKey(identity: string, options?: OperationOptions): Promise<RetireResult> {
    return this.#d.lifecycle.retire(identity, this.#d.context(options), async (stk) => {
      await this.#catchUp();
      const state = await this.#load();
      return {
        openCampaign: openCampaign(state),
        referencingKeys: keysReferencing(this.#materialFacts(), stk),
      };
    });
  }

  async #run(
    campaignId: string,
    context: OperationContext,
    batchSize: number,
    options: RewrapOptions,
  ): Promise<RewrapResult> {
    let order: KeyId[] | null = null;
    let orderFor: string | null = null;
    let batches = 0;
    for (;;) {
      await this.#catchUp();
      const campaign = (await this.#load()).campaigns.get(campaignId);
      if (campaign === undefined) {
        throw new KeyledgerError('ERR_REWRAP_NOT_FOUND', `no rewrap campaign ${campaignId}`, { campaignId });
      }
      if (campaign.finished) return this.#result('finished', campaign);
      const latest = this.#latestIdentity();
      if (campaign.targetStkIdentity !== latest) {
        // A newer STK: a new pass towards it, from the first key.
        await this.#decideAndAppend(
          () => ({
            type: 'RetargetRewrap',
            campaignId,
            latestStkIdentity: latest,
            keys: rewrapKeyOrder(this.#materialFacts()).length,
          }),
          context,
        );
        continue;
      }
      // The order is taken once per pass: keys written later are under the target already.
      if (order === null || orderFor !== `${campaign.targetStkIdentity}/${campaign.pass}`) {
        order = rewrapKeyOrder(this.#materialFacts());
        orderFor = `${campaign.targetStkIdentity}/${campaign.pass}`;
      }
      const batch = nextRewrapBatch(order, campaign.lastKeyId, batchSize);
      const target = campaign.targetStkIdentity;
      if (batch.length === 0) {
        await this.#tolerateRace(() =>
          this.#decideAndAppend(
            () => ({ type: 'FinishRewrap', campaignId, targetStkIdentity: target, remaining: batch.length }),
            context,
          ),
        );
        continue;
      }
      if (
        options.signal?.aborted === true ||
        (options.maxBatches !== undefined && batches >= options.maxBatches)
      ) {
        return this.#result('paused', campaign);
      }
      let rewrapped = 0;
      let skipped = 0;
      for (const keyId of batch) {
        if ((await this.#material.rewrapKey(campaign, keyId, context)) === 'rewrapped') rewrapped++;
        else skipped++;
      }
      const lastKeyId = batch.at(-1) as KeyId;
      await this.#tolerateRace(() =>
        this.#decideAndAppend(
          () => ({
            type: 'RecordRewrapProgress',
            campaignId,
            targetStkIdentity: target,
            lastKeyId,
            rewrapped,
            skipped,
          }),
          context,
        ),
      );
      batches++;
      const now = this.#state.campaigns.get(campaignId);
      if (options.onProgress !== undefined && now !== undefined) await options.onProgress(campaignInfo(now));
    }
  }

  /** Decides against the rewrap stream and appends, re-deciding after a lost race. */
  async #decideAndAppend(
    command: () => RewrapCommand,
    context: OperationContext,
  ): Promise<readonly RewrapEvent[]> {
    const written = await decideAndAppend<RewrapState, RewrapEvent>(this.#d.journal, {
      stream: this.#stream,
      context,
      // Another runner wrote to the rewrap stream: the next try reads what it wrote.
      load: async () => {
        const state = await this.#load();
        return { state, expected: expectedAfter(state.revision) };
      },
      decide: (state) => decideRewrap(state, command()),
    });
    if (written.position !== null) await this.#load();
    return written.events;
  }

  /**
   * A checkpoint or finish that a concurrent runner of the same campaign overtook (it finished the
   * campaign, or retargeted it): nothing to record; the run loop reloads and follows.
   */
  async #tolerateRace(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (
        isKeyledgerError(error, 'ERR_REWRAP_TARGET_CHANGED') ||
        isKeyledgerError(error, 'ERR_REWRAP_FINISHED')
      ) {
        return;
      }
      throw error;
    }
  }

  /** Folds what is new on the rewrap stream into the state this instance keeps. */
  async #load(): Promise<RewrapState> {
    const from = this.#state.revision === null ? 0n : this.#state.revision + 1n;
    let state = this.#state;
    for (const recorded of await this.#d.journal.store.readStream(this.#stream, { fromRevision: from })) {
      if (state.revision !== null && recorded.revision <= state.revision) continue;
      const event = parseEventOf(recorded, REWRAP_EVENT_TYPES);
      state = evolveRewrap(state, event, event.meta.occurredAt, event.revision);
    }
    // Concurrent loads fold prefixes of one stream: keep the longest.
    if (state.revision !== null && (this.#state.revision === null || state.revision > this.#state.revision)) {
      this.#state = state;
    }
    return this.#state;
  }

  /** Waits until this process's views include every event of this ledger in the store now. */
  async #catchUp(): Promise<void> {
    let last = this.#d.projector.position;
    for await (const recorded of this.#d.journal.store.readAll({
      after: last,
      streamPrefix: this.#d.names.prefix,
    })) {
      last = recorded.position;
    }
    await this.#d.projector.waitForPosition(last);
  }

  #materialFacts(): MaterialFact[] {
    const view = this.#d.projector.wholeKeymeta('a rewrap campaign');
    const facts: MaterialFact[] = [];
    for (const [keyId, material] of view.materials) {
      facts.push({
        keyId,
        stkIdentity: material.stkIdentity,
        destroyed: this.#keyOf(keyId)?.state === 'DESTROYED',
      });
    }
    return facts;
  }

  #keyOf(keyId: KeyId) {
    const view = this.#d.projector.keymeta;
    const owner = view.keyIndex.get(keyId);
    return owner === undefined ? undefined : view.scopes.get(owner)?.keys.get(keyId);
  }

  #latestIdentity(): string {
    const latest = this.#d.projector.latestSystemKey();
    if (latest === null) {
      throw new KeyledgerError(
        'ERR_LEDGER_NOT_INITIALISED',
        'the ledger has no system key yet; run init',
        {},
      );
    }
    return latest.identity;
  }

  #result(status: RewrapResult['status'], campaign: RewrapCampaign): RewrapResult {
    const latest = this.#d.projector.latestSystemKey()?.identity;
    const remaining = latest === undefined ? 0 : pendingRewraps(this.#materialFacts(), latest);
    return { status, campaign: campaignInfo(campaign), remaining };
  }

  #contextFor(options: OperationOptions, campaignId: string): OperationContext {
    // Every event a campaign writes, over all its runs, names the campaign as its cause.
    return { ...this.#d.context(options), causationId: campaignId };
  }
}
