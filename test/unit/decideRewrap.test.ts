import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assertResumable,
  decideRetireSystemKey,
  decideRewrap,
  emptyRewrapState,
  evolveRewrap,
  indexAfter,
  keysReferencing,
  type MaterialFact,
  nextRewrapBatch,
  openCampaign,
  pendingRewraps,
  type RetireFacts,
  type RewrapCommand,
  type RewrapState,
  rewrapKeyOrder,
} from '../../src/domain/decideRewrap.js';
import { type DomainEvent, eventDataSchemas, type RewrapEvent } from '../../src/domain/events.js';
import { type KeyId, parseKeyId } from '../../src/domain/identities.js';
import { at, OTHER_STK, STK, throwsCode } from '../helpers/domainFixtures.js';

const C1 = '11111111-1111-4111-8111-111111111111';
const C2 = '22222222-2222-4222-8222-222222222222';
const THIRD_STK = 'aaaaaaaaaaaaaaaa';

/** Key ids that sort as their number does. */
function key(n: number): KeyId {
  return parseKeyId(n.toString(16).padStart(32, '0'));
}

/** The state after `events`, folded as the runner folds the rewrap stream. */
function given(...events: readonly RewrapEvent[]): RewrapState {
  let state = emptyRewrapState();
  events.forEach((event, i) => {
    state = evolveRewrap(state, event, at(i), BigInt(i));
  });
  return state;
}

/** Decides, checks every event fits its stored schema, and returns the state after them too. */
function when(state: RewrapState, command: RewrapCommand): { events: RewrapEvent[]; after: RewrapState } {
  const events = decideRewrap(state, command);
  assertStorable(events);
  let after = state;
  for (const event of events) {
    after = evolveRewrap(after, event, at(99), (after.revision ?? -1n) + 1n);
  }
  return { events, after };
}

function assertStorable(events: readonly DomainEvent[]): void {
  for (const event of events) {
    const parsed = eventDataSchemas[event.type].safeParse(JSON.parse(JSON.stringify(event.data)));
    assert.ok(parsed.success, `${event.type} does not fit its schema: ${parsed.error?.message}`);
  }
}

const started = (campaignId = C1, keys = 5, target = OTHER_STK): RewrapEvent => ({
  type: 'RewrapStarted',
  data: { campaignId, targetStkIdentity: target, keys },
});
const progressed = (done: number, lastKeyId: KeyId, rewrapped: number, skipped: number, campaignId = C1) =>
  ({
    type: 'RewrapProgressed',
    data: { campaignId, done, lastKeyId, rewrapped, skipped },
  }) as const satisfies RewrapEvent;
const finished = (rewrapped: number, skipped: number, campaignId = C1): RewrapEvent => ({
  type: 'RewrapFinished',
  data: { campaignId, rewrapped, skipped },
});

const start = (pending = 3, keys = 5, campaignId = C1): RewrapCommand => ({
  type: 'StartRewrap',
  campaignId,
  latestStkIdentity: OTHER_STK,
  keys,
  pending,
});
const batch = (lastKeyId: KeyId, rewrapped: number, skipped: number, target = OTHER_STK): RewrapCommand => ({
  type: 'RecordRewrapProgress',
  campaignId: C1,
  targetStkIdentity: target,
  lastKeyId,
  rewrapped,
  skipped,
});

describe('decideRewrap: start', () => {
  it('given no campaign and keys under an older STK, when started, then RewrapStarted names the latest STK and the keys to visit', () => {
    const { events, after } = when(given(), start(3, 5));
    assert.deepEqual(events, [started(C1, 5)]);
    const campaign = openCampaign(after);
    assert.equal(campaign?.campaignId, C1);
    assert.deepEqual(
      [campaign?.targetStkIdentity, campaign?.keys, campaign?.done, campaign?.lastKeyId, campaign?.pass],
      [OTHER_STK, 5, 0, null, 1],
    );
  });

  it('given every key already under the latest STK, when started, then nothing is recorded', () => {
    assert.deepEqual(decideRewrap(given(), start(0, 5)), []);
    assert.deepEqual(decideRewrap(given(), start(0, 0)), []);
  });

  it('given an unfinished campaign, when another is started, then ERR_REWRAP_IN_PROGRESS names it', () => {
    const state = given(started(C1), progressed(2, key(2), 2, 0));
    throwsCode(() => decideRewrap(state, start(3, 5, C2)), 'ERR_REWRAP_IN_PROGRESS', {
      campaignId: C1,
      targetStkIdentity: OTHER_STK,
    });
  });

  it('given a finished campaign, when another is started, then it starts; reusing the finished id is refused', () => {
    const state = given(started(C1), progressed(5, key(5), 4, 1), finished(4, 1));
    assert.equal(openCampaign(state), null);
    assert.deepEqual(decideRewrap(state, start(1, 5, C2)), [started(C2, 5)]);
    throwsCode(() => decideRewrap(state, start(1, 5, C1)), 'ERR_INVALID_ARGUMENT', { campaignId: C1 });
  });

  it('given counts that are not counts, when started, then ERR_INVALID_ARGUMENT', () => {
    throwsCode(() => decideRewrap(given(), start(-1, 5)), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => decideRewrap(given(), start(1, 1.5)), 'ERR_INVALID_ARGUMENT');
  });
});

describe('decideRewrap: progress', () => {
  it('given a started campaign, when batches are recorded, then checkpoints carry cumulative counts', () => {
    const first = when(given(started()), batch(key(2), 2, 0));
    assert.deepEqual(first.events, [progressed(2, key(2), 2, 0)]);
    const second = when(first.after, batch(key(5), 2, 1));
    assert.deepEqual(second.events, [progressed(5, key(5), 4, 1)]);
    const campaign = openCampaign(second.after);
    assert.deepEqual(
      [campaign?.done, campaign?.rewrapped, campaign?.skipped, campaign?.lastKeyId],
      [5, 4, 1, key(5)],
    );
  });

  it('given a checkpoint already at or past the batch, when it is recorded again, then nothing (a concurrent runner got there first)', () => {
    const state = given(started(), progressed(4, key(4), 4, 0));
    assert.deepEqual(decideRewrap(state, batch(key(4), 4, 0)), []);
    assert.deepEqual(decideRewrap(state, batch(key(3), 3, 0)), []);
  });

  it('given a campaign towards another STK, when a batch for the old target is recorded, then ERR_REWRAP_TARGET_CHANGED', () => {
    throwsCode(() => decideRewrap(given(started()), batch(key(1), 1, 0, STK)), 'ERR_REWRAP_TARGET_CHANGED', {
      campaignId: C1,
      targetStkIdentity: OTHER_STK,
    });
  });

  it('given no such campaign or a finished one, when a batch is recorded, then ERR_REWRAP_NOT_FOUND / ERR_REWRAP_FINISHED', () => {
    throwsCode(() => decideRewrap(given(), batch(key(1), 1, 0)), 'ERR_REWRAP_NOT_FOUND', { campaignId: C1 });
    const done = given(started(), progressed(5, key(5), 5, 0), finished(5, 0));
    throwsCode(() => decideRewrap(done, batch(key(6), 1, 0)), 'ERR_REWRAP_FINISHED', { campaignId: C1 });
  });

  it('given a started campaign, when an empty batch is recorded, then ERR_INVALID_ARGUMENT', () => {
    throwsCode(() => decideRewrap(given(started()), batch(key(1), 0, 0)), 'ERR_INVALID_ARGUMENT');
  });
});

describe('decideRewrap: finish', () => {
  it('given every key visited, when finished, then RewrapFinished with the counts and the campaign is closed', () => {
    const state = given(started(), progressed(5, key(5), 4, 1));
    const { events, after } = when(state, {
      type: 'FinishRewrap',
      campaignId: C1,
      targetStkIdentity: OTHER_STK,
      remaining: 0,
    });
    assert.deepEqual(events, [finished(4, 1)]);
    assert.equal(openCampaign(after), null);
    assert.equal(after.campaigns.get(C1)?.finished, true);
  });

  it('given keys after the checkpoint, when finished, then ERR_INVALID_TRANSITION', () => {
    const state = given(started(), progressed(2, key(2), 2, 0));
    throwsCode(
      () =>
        decideRewrap(state, {
          type: 'FinishRewrap',
          campaignId: C1,
          targetStkIdentity: OTHER_STK,
          remaining: 3,
        }),
      'ERR_INVALID_TRANSITION',
      { remaining: 3 },
    );
  });

  it('given a campaign retargeted meanwhile, when finished for the old target, then ERR_REWRAP_TARGET_CHANGED', () => {
    throwsCode(
      () =>
        decideRewrap(given(started()), {
          type: 'FinishRewrap',
          campaignId: C1,
          targetStkIdentity: STK,
          remaining: 0,
        }),
      'ERR_REWRAP_TARGET_CHANGED',
    );
  });
});

describe('decideRewrap: resume and retarget', () => {
  it('given an interrupted campaign, when resumed, then it continues after its checkpoint', () => {
    const state = given(started(), progressed(2, key(2), 2, 0));
    const campaign = assertResumable(state, C1);
    const order = [1, 2, 3, 4, 5].map(key);
    assert.deepEqual(nextRewrapBatch(order, campaign.lastKeyId, 2), [key(3), key(4)]);
  });

  it('given no such campaign or a finished one, when resumed, then ERR_REWRAP_NOT_FOUND / ERR_REWRAP_FINISHED', () => {
    throwsCode(() => assertResumable(given(), C1), 'ERR_REWRAP_NOT_FOUND');
    throwsCode(
      () => assertResumable(given(started(), progressed(5, key(5), 5, 0), finished(5, 0)), C1),
      'ERR_REWRAP_FINISHED',
    );
  });

  it('given interruptions after any batch, when resumed each time, then every key is visited exactly once', () => {
    const order = Array.from({ length: 23 }, (_, i) => key(i * 7 + 1));
    for (const size of [1, 3, 5, 23, 50]) {
      let state = when(given(), start(23, 23)).after;
      const visited: KeyId[] = [];
      for (let guard = 0; guard < 100; guard++) {
        // Every loop is a fresh resume: only what the stream says carries over.
        const campaign = assertResumable(state, C1);
        const next = nextRewrapBatch(order, campaign.lastKeyId, size);
        if (next.length === 0) break;
        visited.push(...next);
        state = when(state, batch(next.at(-1) as KeyId, next.length, 0)).after;
      }
      assert.deepEqual(visited, order, `batch size ${size}`);
      const { events } = when(state, {
        type: 'FinishRewrap',
        campaignId: C1,
        targetStkIdentity: OTHER_STK,
        remaining: 0,
      });
      assert.deepEqual(events, [finished(23, 0)]);
    }
  });

  it('given the target is still the latest STK, when retargeted, then nothing', () => {
    const state = given(started());
    assert.deepEqual(
      decideRewrap(state, { type: 'RetargetRewrap', campaignId: C1, latestStkIdentity: OTHER_STK, keys: 5 }),
      [],
    );
  });

  it('given a newer STK was recorded under a running campaign, when retargeted, then a new pass starts from the first key', () => {
    const state = given(started(), progressed(3, key(3), 3, 0));
    const { events, after } = when(state, {
      type: 'RetargetRewrap',
      campaignId: C1,
      latestStkIdentity: THIRD_STK,
      keys: 6,
    });
    assert.deepEqual(events, [
      {
        type: 'RewrapRetargeted',
        data: { campaignId: C1, targetStkIdentity: THIRD_STK, previousTargetStkIdentity: OTHER_STK, keys: 6 },
      },
    ]);
    const campaign = assertResumable(after, C1);
    assert.deepEqual(
      [campaign.targetStkIdentity, campaign.pass, campaign.keys, campaign.done, campaign.lastKeyId],
      [THIRD_STK, 2, 6, 0, null],
    );
    throwsCode(() => decideRewrap(after, batch(key(4), 1, 0)), 'ERR_REWRAP_TARGET_CHANGED');
    assert.equal(when(after, batch(key(1), 1, 0, THIRD_STK)).events.length, 1);
  });
});

describe('which keys a campaign visits', () => {
  const facts: MaterialFact[] = [
    { keyId: key(9), stkIdentity: STK, destroyed: false },
    { keyId: key(3), stkIdentity: OTHER_STK, destroyed: false },
    { keyId: key(5), stkIdentity: STK, destroyed: true },
    { keyId: key(1), stkIdentity: STK, destroyed: false },
  ];

  it('every key with material but the DESTROYED ones, in key id order', () => {
    assert.deepEqual(rewrapKeyOrder(facts), [key(1), key(3), key(9)]);
  });

  it('pending and referencing counts leave DESTROYED keys out', () => {
    assert.equal(pendingRewraps(facts, OTHER_STK), 2);
    assert.equal(pendingRewraps(facts, STK), 1);
    assert.equal(keysReferencing(facts, STK), 2);
    assert.equal(keysReferencing(facts, THIRD_STK), 0);
  });

  it('a checkpoint that is no longer in the order still resumes after it', () => {
    const order = [key(1), key(3), key(9)];
    assert.equal(indexAfter(order, null), 0);
    assert.equal(indexAfter(order, key(2)), 1);
    assert.equal(indexAfter(order, key(9)), 3);
    assert.deepEqual(nextRewrapBatch(order, key(4), 10), [key(9)]);
    assert.deepEqual(nextRewrapBatch(order, key(9), 10), []);
  });

  it('a batch size that is not a positive integer is ERR_INVALID_ARGUMENT', () => {
    throwsCode(() => nextRewrapBatch([], null, 0), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => nextRewrapBatch([], null, 2.5), 'ERR_INVALID_ARGUMENT');
  });
});

describe('decideRetireSystemKey', () => {
  const keys = [
    { sequence: 1, identity: STK, retired: false },
    { sequence: 2, identity: OTHER_STK, retired: false },
  ];
  const facts = (overrides: Partial<RetireFacts> = {}): RetireFacts => ({
    identity: STK,
    systemKeys: keys,
    referencingKeys: 0,
    openCampaign: null,
    ...overrides,
  });

  it('given an old STK no key references, when retired, then SystemKeyRetired with its sequence', () => {
    const events = decideRetireSystemKey(facts());
    assert.deepEqual(events, [{ type: 'SystemKeyRetired', data: { identity: STK, sequence: 1 } }]);
    assertStorable(events);
  });

  it('given keys still wrapped under it, when retired, then ERR_SYSTEM_KEY_IN_USE with their count', () => {
    throwsCode(() => decideRetireSystemKey(facts({ referencingKeys: 3 })), 'ERR_SYSTEM_KEY_IN_USE', {
      identity: STK,
      keys: 3,
    });
  });

  it('given the current STK, when retired, then ERR_SYSTEM_KEY_CURRENT', () => {
    throwsCode(() => decideRetireSystemKey(facts({ identity: OTHER_STK })), 'ERR_SYSTEM_KEY_CURRENT', {
      sequence: 2,
    });
  });

  it('given an unfinished campaign towards it, when retired, then ERR_SYSTEM_KEY_IN_USE naming the campaign', () => {
    throwsCode(
      () => decideRetireSystemKey(facts({ openCampaign: { campaignId: C1, targetStkIdentity: STK } })),
      'ERR_SYSTEM_KEY_IN_USE',
      { campaignId: C1 },
    );
    // A campaign towards another STK is no obstacle.
    assert.equal(
      decideRetireSystemKey(facts({ openCampaign: { campaignId: C1, targetStkIdentity: OTHER_STK } })).length,
      1,
    );
  });

  it('given a retired STK, when retired again, then ERR_SYSTEM_KEY_ALREADY_RETIRED', () => {
    const retired = [{ ...keys[0], sequence: 1, identity: STK, retired: true }, ...keys.slice(1)];
    throwsCode(
      () => decideRetireSystemKey(facts({ systemKeys: retired })),
      'ERR_SYSTEM_KEY_ALREADY_RETIRED',
      {
        sequence: 1,
      },
    );
  });

  it('given an unknown identity or no STK at all, then ERR_SYSTEM_KEY_NOT_FOUND / ERR_LEDGER_NOT_INITIALISED', () => {
    throwsCode(() => decideRetireSystemKey(facts({ identity: THIRD_STK })), 'ERR_SYSTEM_KEY_NOT_FOUND');
    throwsCode(() => decideRetireSystemKey(facts({ systemKeys: [] })), 'ERR_LEDGER_NOT_INITIALISED');
  });

  it('given the same key bytes recorded under two names, when retired, then the later sequence is named', () => {
    const renamed = [
      { sequence: 1, identity: STK, retired: false },
      { sequence: 2, identity: STK, retired: false },
      { sequence: 3, identity: OTHER_STK, retired: false },
    ];
    assert.deepEqual(decideRetireSystemKey(facts({ systemKeys: renamed })), [
      { type: 'SystemKeyRetired', data: { identity: STK, sequence: 2 } },
    ]);
  });
});
