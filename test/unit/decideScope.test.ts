import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRefreshAnswer, planRefresh } from '../../src/domain/decideRefresh.js';
import {
  decideClearCache,
  decideEjectCacheEntry,
  decideScope,
  enableIsNoop,
  newKeysIn,
  type ScopeCommand,
} from '../../src/domain/decideScope.js';
import { type ErrorCode, KeyledgerError } from '../../src/domain/errors.js';
import { type DomainEvent, eventDataSchemas, type ScopeEvent } from '../../src/domain/events.js';
import { formatScope, type KeyId } from '../../src/domain/identities.js';
import type { KeyFacts } from '../../src/domain/keyFacts.js';
import {
  assertTransition,
  canTransition,
  KEY_STATES,
  KEY_TRANSITIONS,
  type KeyState,
  PROVIDER_KEY_STATES,
  type ProviderKeyState,
} from '../../src/domain/keyState.js';
import { activeKey, type ManagedKey, type ScopeState } from '../../src/domain/scopeState.js';
import {
  activeAnswer,
  activeKeyIds,
  answer,
  at,
  checksumFor,
  disabledAnswer,
  enabled,
  enableFailed,
  failedAnswer,
  foldOnto,
  givenEvents,
  hashFor,
  inactiveAnswer,
  keyDisabled,
  keyIdFor,
  keyReenabled,
  keySet,
  managementDisabled,
  OTHER_SCOPE,
  OTHER_STK,
  recordFor,
  refreshAnswers,
  refreshed,
  rotated,
  SCOPE,
  STK,
  seededRandom,
  stateOf,
  summarise,
  throwsCode,
  when,
} from '../helpers/domainFixtures.js';

const S = SCOPE;
const NAMES = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];

/** decideScope, plus a check that every event it decides fits the schema it will be stored under. */
function decide(state: ScopeState, command: ScopeCommand): ScopeEvent[] {
  const events = decideScope(state, command);
  assertStorable(events);
  return events;
}

function assertStorable(events: readonly DomainEvent[]): void {
  for (const event of events) {
    const parsed = eventDataSchemas[event.type].safeParse(event.data);
    assert.ok(parsed.success, `${event.type} does not fit its schema: ${parsed.error?.message}`);
  }
}

/** The summary of the scope after `events` are folded onto `state` (keys named from NAMES). */
function after(state: ScopeState, events: readonly ScopeEvent[]) {
  return summarise(foldOnto(state, events), NAMES);
}

function keyOf(state: ScopeState, name: string): ManagedKey {
  const key = state.keys.get(keyIdFor(state.scope, name));
  assert.ok(key !== undefined, `scope has no key ${name}`);
  return key;
}

/** k0 was enabled, k1 and k2 rotated in: k0, k1 INACTIVE, k2 ACTIVE. */
function threeKeys(): ScopeState {
  return givenEvents(S, enabled(S, 'k0'), rotated(S, 'k1', 'k0'), rotated(S, 'k2', 'k1'));
}

describe('enableKeyManagement', () => {
  const notEnabled: [string, ScopeState][] = [
    ['a scope with no marker', givenEvents(S)],
    ['a scope with a FAILED marker', givenEvents(S, enableFailed(S, 'FAILED'))],
    ['a scope with a DISABLED marker', givenEvents(S, enableFailed(S, 'DISABLED'))],
  ];

  for (const [given, state] of notEnabled) {
    it(`given ${given}, when the provider returns an ACTIVE key, then KeyManagementEnabled records it ACTIVE with an ACTIVE marker`, () => {
      assert.equal(enableIsNoop(state), false);
      const events = decide(state, when.enable(activeAnswer(S, 'k1')));
      assert.deepEqual(events, [enabled(S, 'k1')]);
      assert.deepEqual(newKeysIn(state, events), [recordFor(S, 'k1')]);
      assert.deepEqual(after(state, events), { marker: 'ACTIVE', active: 'k1', keys: { k1: 'ACTIVE' } });
    });

    // A marker that already says FAILED (or DISABLED) records nothing new: tested further down.
    if (state.marker !== 'FAILED')
      it(`given ${given}, when the provider answers FAILED, then KeyManagementEnableFailed records a FAILED marker`, () => {
        const events = decide(state, when.enable(failedAnswer(S)));
        assert.deepEqual(events, [enableFailed(S, 'FAILED')]);
        assert.deepEqual(newKeysIn(state, events), []);
        assert.deepEqual(after(state, events), { marker: 'FAILED', active: null, keys: {} });
      });

    if (state.marker !== 'DISABLED')
      it(`given ${given}, when the provider answers DISABLED, then KeyManagementEnableFailed records a DISABLED marker`, () => {
        const events = decide(state, when.enable(disabledAnswer(S, 'k1')));
        assert.deepEqual(events, [enableFailed(S, 'DISABLED')]);
        assert.deepEqual(after(state, events), { marker: 'DISABLED', active: null, keys: {} });
      });

    it(`given ${given}, when the provider answers INACTIVE, then ERR_PROVIDER_KEY_NOT_ACTIVE`, () => {
      throwsCode(() => decide(state, when.enable(inactiveAnswer(S, 'k1'))), 'ERR_PROVIDER_KEY_NOT_ACTIVE', {
        scope: formatScope(S),
        providerState: 'INACTIVE',
      });
    });

    it(`given ${given}, when the provider returns null, then ERR_PROVIDER_NO_KEY`, () => {
      throwsCode(() => decide(state, when.enable(null)), 'ERR_PROVIDER_NO_KEY', { scope: formatScope(S) });
    });
  }

  it('given an enabled scope with an ACTIVE key, when enable is asked, then nothing is recorded and no provider answer is needed', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    assert.equal(enableIsNoop(state), true);
    assert.deepEqual(decide(state, when.enable(null)), []);
    assert.deepEqual(decide(state, when.enable(activeAnswer(S, 'k2'))), []);
    assert.deepEqual(decide(state, when.enable(failedAnswer(S))), []);
  });

  it('given no marker, when the provider answers about another scope, then ERR_PROVIDER_WRONG_SCOPE', () => {
    const state = givenEvents(S);
    throwsCode(
      () => decide(state, when.enable(activeAnswer(S, 'k1', { answeredScope: OTHER_SCOPE }))),
      'ERR_PROVIDER_WRONG_SCOPE',
      { scope: formatScope(S), answeredScope: formatScope(OTHER_SCOPE) },
    );
    throwsCode(() => decide(state, when.enable(failedAnswer(OTHER_SCOPE))), 'ERR_PROVIDER_WRONG_SCOPE');
  });

  it('given no marker, when the provider answers ACTIVE without a checksum, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S);
    throwsCode(
      () => decide(state, when.enable(activeAnswer(S, 'k1', { checksum: null }))),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
  });

  it('given no marker, when the provider answers ACTIVE without naming a key, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S);
    throwsCode(
      () => decide(state, when.enable({ scope: S, state: 'ACTIVE', key: null })),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
  });

  it('given key management was disabled, when enabled again with the same key, then that known key becomes ACTIVE again and no new key is recorded', () => {
    const state = givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1'));
    assert.equal(stateOf(state, 'k1'), 'INACTIVE');
    // The record is the known one (its original system key), whatever the command's STK.
    const events = decide(state, when.enable(activeAnswer(S, 'k1'), OTHER_STK));
    assert.deepEqual(events, [enabled(S, 'k1', null, STK)]);
    assert.deepEqual(newKeysIn(state, events), []);
    const next = foldOnto(state, events);
    assert.deepEqual(summarise(next, NAMES), { marker: 'ACTIVE', active: 'k1', keys: { k1: 'ACTIVE' } });
    assert.equal(next.keys.size, 1);
    assert.equal(keyOf(next, 'k1').createdAt, keyOf(state, 'k1').createdAt);
  });

  it('given key management was disabled, when enabled with a new key, then the new key is ACTIVE and the old one stays INACTIVE', () => {
    const state = givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1'));
    const events = decide(state, when.enable(activeAnswer(S, 'k2'), OTHER_STK));
    assert.deepEqual(events, [enabled(S, 'k2', null, OTHER_STK)]);
    assert.deepEqual(newKeysIn(state, events), [recordFor(S, 'k2', OTHER_STK)]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
    });
  });

  it('given key management was disabled, when the provider returns the known key with other bytes, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1'));
    throwsCode(
      () => decide(state, when.enable(activeAnswer(S, 'k1', { checksum: checksumFor('k1', 'replaced') }))),
      'ERR_PROVIDER_INVALID_ANSWER',
      { metadataHash: hashFor(S, 'k1') },
    );
  });

  it('given the provider key is one the scope has DISABLED, when enabled, then ERR_KEY_DISABLED', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'));
    throwsCode(() => decide(state, when.enable(activeAnswer(S, 'k1'))), 'ERR_KEY_DISABLED', {
      scope: formatScope(S),
      metadataHash: hashFor(S, 'k1'),
      state: 'DISABLED',
    });
  });

  it('given an ACTIVE marker whose active key was disabled, when enable is asked, then it asks the provider and records the new key', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'));
    assert.equal(state.marker, 'ACTIVE');
    assert.equal(enableIsNoop(state), false);
    throwsCode(() => decide(state, when.enable(null)), 'ERR_PROVIDER_NO_KEY');
    const events = decide(state, when.enable(activeAnswer(S, 'k2')));
    assert.deepEqual(events, [enabled(S, 'k2', null)]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'DISABLED', k2: 'ACTIVE' },
    });
  });

  it('given a FAILED marker, when the provider answers DISABLED, then the marker becomes DISABLED', () => {
    const state = givenEvents(S, enableFailed(S, 'FAILED'));
    const events = decide(state, when.enable(disabledAnswer(S, 'k1')));
    assert.deepEqual(events, [enableFailed(S, 'DISABLED')]);
    assert.equal(foldOnto(state, events).marker, 'DISABLED');
  });

  it('given a FAILED marker, when the provider still answers FAILED, then nothing is recorded (retries do not grow the stream)', () => {
    const state = givenEvents(S, enableFailed(S, 'FAILED'));
    assert.deepEqual(decide(state, when.enable(failedAnswer(S))), []);
    const disabled = givenEvents(S, enableFailed(S, 'DISABLED'));
    assert.deepEqual(decide(disabled, when.enable(disabledAnswer(S, 'k1'))), []);
  });
});

describe('rotateManagedKey', () => {
  const notEnabled: [string, ScopeState][] = [
    ['a scope with no marker', givenEvents(S)],
    ['a scope with a FAILED marker', givenEvents(S, enableFailed(S, 'FAILED'))],
    ['a scope with a DISABLED marker', givenEvents(S, enableFailed(S, 'DISABLED'))],
    [
      'a scope whose key management was disabled',
      givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1')),
    ],
  ];
  for (const [given, state] of notEnabled) {
    it(`given ${given}, when rotated, then ERR_KEY_MANAGEMENT_NOT_ENABLED (before the answer is looked at)`, () => {
      throwsCode(() => decide(state, when.rotate(activeAnswer(S, 'k2'))), 'ERR_KEY_MANAGEMENT_NOT_ENABLED', {
        scope: formatScope(S),
        marker: state.marker,
      });
      throwsCode(() => decide(state, when.rotate(null)), 'ERR_KEY_MANAGEMENT_NOT_ENABLED');
    });
  }

  it('given an ACTIVE scope, when the provider returns a new ACTIVE key, then the new key is ACTIVE and the old INACTIVE in one event', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    const events = decide(state, when.rotate(activeAnswer(S, 'k2'), OTHER_STK));
    assert.deepEqual(events, [rotated(S, 'k2', 'k1', OTHER_STK)]);
    assert.deepEqual(newKeysIn(state, events), [recordFor(S, 'k2', OTHER_STK)]);
    const next = foldOnto(state, events);
    assert.deepEqual(summarise(next, NAMES), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
    });
    assert.deepEqual(activeKeyIds(next), [keyIdFor(S, 'k2')]);
  });

  it('given an ACTIVE scope, when the provider returns the same ACTIVE key, then nothing is recorded', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    assert.deepEqual(decide(state, when.rotate(activeAnswer(S, 'k1'))), []);
  });

  const nonActive: [string, KeyFacts | null][] = [
    ['FAILED', failedAnswer(S)],
    ['INACTIVE', inactiveAnswer(S, 'k2')],
    ['DISABLED', disabledAnswer(S, 'k2')],
    ['null', null],
  ];
  for (const [what, reply] of nonActive) {
    it(`given an ACTIVE scope, when the provider answers ${what}, then nothing is recorded and the current key stays ACTIVE`, () => {
      const state = givenEvents(S, enabled(S, 'k1'));
      assert.deepEqual(decide(state, when.rotate(reply)), []);
    });
  }

  it('given an ACTIVE scope, when the provider answers about another scope, then ERR_PROVIDER_WRONG_SCOPE', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(
      () => decide(state, when.rotate(activeAnswer(S, 'k2', { answeredScope: OTHER_SCOPE }))),
      'ERR_PROVIDER_WRONG_SCOPE',
    );
    throwsCode(() => decide(state, when.rotate(failedAnswer(OTHER_SCOPE))), 'ERR_PROVIDER_WRONG_SCOPE');
  });

  it('given an ACTIVE scope, when the provider answers ACTIVE without a checksum, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(
      () => decide(state, when.rotate(activeAnswer(S, 'k2', { checksum: null }))),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
  });

  it('given a known INACTIVE key, when rotated to it, then it is promoted (no new key) and the ACTIVE one demoted', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.rotate(activeAnswer(S, 'k1'), OTHER_STK));
    assert.deepEqual(events, [rotated(S, 'k1', 'k2', STK)]);
    assert.deepEqual(newKeysIn(state, events), []);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k1',
      keys: { k1: 'ACTIVE', k2: 'INACTIVE' },
    });
  });

  it('given a known INACTIVE key, when the provider returns it with other bytes, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    throwsCode(
      () => decide(state, when.rotate(activeAnswer(S, 'k1', { checksum: checksumFor('k1', 'other') }))),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
  });

  it('given a known DISABLED key, when rotated to it, then ERR_KEY_DISABLED', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'), keyDisabled(S, 'k1', 'INACTIVE'));
    throwsCode(() => decide(state, when.rotate(activeAnswer(S, 'k1'))), 'ERR_KEY_DISABLED', {
      metadataHash: hashFor(S, 'k1'),
    });
  });

  it('given an ACTIVE marker whose active key was disabled, when rotated, then the new key is recorded with previousKeyId null', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'));
    const events = decide(state, when.rotate(activeAnswer(S, 'k2')));
    assert.deepEqual(events, [rotated(S, 'k2', null)]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'DISABLED', k2: 'ACTIVE' },
    });
  });

  it('given an ACTIVE scope, when the provider returns the ACTIVE key with other bytes, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(
      () => decide(state, when.rotate(activeAnswer(S, 'k1', { checksum: checksumFor('k1', 'replaced') }))),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
  });
});

describe('disableKeyManagement', () => {
  it('given ACTIVE, INACTIVE and DISABLED keys, when disabled, then the marker is DISABLED, the ACTIVE key INACTIVE and the others unchanged', () => {
    const state = foldOnto(threeKeys(), [keyDisabled(S, 'k0', 'INACTIVE')]);
    const events = decide(state, when.disableManagement());
    assert.deepEqual(events, [managementDisabled(S, 'k2')]);
    assert.deepEqual(newKeysIn(state, events), []);
    assert.deepEqual(after(state, events), {
      marker: 'DISABLED',
      active: null,
      keys: { k0: 'DISABLED', k1: 'INACTIVE', k2: 'INACTIVE' },
    });
  });

  it('given key management already disabled, when disabled again, then nothing is recorded', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    const first = decide(state, when.disableManagement());
    const disabled = foldOnto(state, first);
    assert.deepEqual(decide(disabled, when.disableManagement()), []);
  });

  it('given a scope never enabled, when disabled, then a DISABLED marker is recorded', () => {
    const state = givenEvents(S);
    const events = decide(state, when.disableManagement());
    assert.deepEqual(events, [managementDisabled(S)]);
    assert.deepEqual(after(state, events), { marker: 'DISABLED', active: null, keys: {} });
  });

  it('given a FAILED marker, when disabled, then the marker becomes DISABLED', () => {
    const state = givenEvents(S, enableFailed(S, 'FAILED'));
    const events = decide(state, when.disableManagement());
    assert.deepEqual(events, [managementDisabled(S)]);
    assert.equal(foldOnto(state, events).marker, 'DISABLED');
  });

  it('given an ACTIVE marker whose active key was disabled, when disabled, then only the marker changes', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'));
    const events = decide(state, when.disableManagement());
    assert.deepEqual(events, [managementDisabled(S)]);
    assert.deepEqual(after(state, events), { marker: 'DISABLED', active: null, keys: { k1: 'DISABLED' } });
  });
});

describe('disableManagedKey', () => {
  it('given the ACTIVE key, when disabled, then it is DISABLED and the scope has no active key though its marker stays ACTIVE', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    const events = decide(state, when.disableKey(hashFor(S, 'k1')));
    assert.deepEqual(events, [keyDisabled(S, 'k1', 'ACTIVE')]);
    const next = foldOnto(state, events);
    assert.deepEqual(summarise(next, NAMES), { marker: 'ACTIVE', active: null, keys: { k1: 'DISABLED' } });
    assert.equal(activeKey(next), null);
  });

  it('given an INACTIVE key, when disabled, then it is DISABLED and the ACTIVE key stays', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.disableKey(hashFor(S, 'k1')));
    assert.deepEqual(events, [keyDisabled(S, 'k1', 'INACTIVE')]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'DISABLED', k2: 'ACTIVE' },
    });
  });

  it('given a scope whose key management was disabled, when its INACTIVE key is disabled, then it is DISABLED', () => {
    const state = givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1'));
    const events = decide(state, when.disableKey(hashFor(S, 'k1')));
    assert.deepEqual(events, [keyDisabled(S, 'k1', 'INACTIVE')]);
    assert.deepEqual(after(state, events), { marker: 'DISABLED', active: null, keys: { k1: 'DISABLED' } });
  });

  it('given a DISABLED key, when disabled again, then ERR_KEY_ALREADY_DISABLED', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'));
    throwsCode(() => decide(state, when.disableKey(hashFor(S, 'k1'))), 'ERR_KEY_ALREADY_DISABLED', {
      scope: formatScope(S),
      metadataHash: hashFor(S, 'k1'),
      state: 'DISABLED',
    });
  });

  it('given an unknown metadata hash, when disabled, then ERR_KEY_NOT_FOUND naming the scope and the hash', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    const error = throwsCode(() => decide(state, when.disableKey(hashFor(S, 'k9'))), 'ERR_KEY_NOT_FOUND', {
      scope: formatScope(S),
      metadataHash: hashFor(S, 'k9'),
    });
    assert.match(error.message, new RegExp(hashFor(S, 'k9')));
    assert.ok(error.message.includes(formatScope(S)));
  });

  it('given a key of another scope with the same metadata hash, when disabled here, then ERR_KEY_NOT_FOUND', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    const elsewhere = givenEvents(OTHER_SCOPE, enabled(OTHER_SCOPE, 'k2'));
    throwsCode(() => decide(state, when.disableKey(hashFor(OTHER_SCOPE, 'k2'))), 'ERR_KEY_NOT_FOUND');
    throwsCode(() => decide(givenEvents(S), when.disableKey(hashFor(S, 'k1'))), 'ERR_KEY_NOT_FOUND');
    assert.equal(stateOf(elsewhere, 'k2'), 'ACTIVE');
  });
});

describe('enableManagedKey', () => {
  it('given a DISABLED key, when re-enabled, then ManagedKeyReenabled makes it INACTIVE (never ACTIVE)', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'));
    const events = decide(state, when.enableKey(hashFor(S, 'k1')));
    assert.deepEqual(events, [keyReenabled(S, 'k1')]);
    assert.deepEqual(after(state, events), { marker: 'ACTIVE', active: null, keys: { k1: 'INACTIVE' } });
  });

  it('given a re-enabled key, when set as the managed key, then it becomes ACTIVE again (the second step)', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'), keyReenabled(S, 'k1'));
    const events = decide(state, when.set(activeAnswer(S, 'k1')));
    assert.deepEqual(events, [keySet(S, 'k1', null)]);
    assert.deepEqual(after(state, events), { marker: 'ACTIVE', active: 'k1', keys: { k1: 'ACTIVE' } });
  });

  for (const [what, state] of [
    ['an ACTIVE key', givenEvents(S, enabled(S, 'k1'))],
    ['an INACTIVE key', givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1'))],
  ] as const) {
    it(`given ${what}, when re-enabled, then ERR_KEY_NOT_DISABLED`, () => {
      throwsCode(() => decide(state, when.enableKey(hashFor(S, 'k1'))), 'ERR_KEY_NOT_DISABLED', {
        scope: formatScope(S),
        metadataHash: hashFor(S, 'k1'),
        state: stateOf(state, 'k1'),
      });
    });
  }

  it('given an unknown metadata hash, when re-enabled, then ERR_KEY_NOT_FOUND', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(() => decide(state, when.enableKey(hashFor(S, 'k9'))), 'ERR_KEY_NOT_FOUND', {
      scope: formatScope(S),
      metadataHash: hashFor(S, 'k9'),
    });
  });
});

describe('refreshManagedKeys', () => {
  describe('planRefresh', () => {
    it('given a DISABLED marker, then refresh is skipped and decides nothing', () => {
      const state = givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1'));
      assert.deepEqual(planRefresh(state), { kind: 'skip' });
      assert.deepEqual(planRefresh(givenEvents(S, enableFailed(S, 'DISABLED'))), { kind: 'skip' });
      assert.deepEqual(decide(state, when.refresh(S, { k1: activeAnswer(S, 'k1') })), []);
    });

    it('given a FAILED marker, then refresh retries enable and decides nothing itself', () => {
      const state = givenEvents(S, enableFailed(S, 'FAILED'));
      assert.deepEqual(planRefresh(state), { kind: 'retry-enable' });
      assert.deepEqual(decide(state, when.refresh(S, {})), []);
    });

    it('given an ACTIVE marker, then refresh asks about the ACTIVE and INACTIVE keys only, in ledger order', () => {
      const state = foldOnto(threeKeys(), [keyDisabled(S, 'k1', 'INACTIVE')]);
      const plan = planRefresh(state);
      assert.equal(plan.kind, 'refresh');
      assert.ok(plan.kind === 'refresh');
      assert.deepEqual(
        plan.keys.map((k) => [k.keyId, k.state]),
        [
          [keyIdFor(S, 'k0'), 'INACTIVE'],
          [keyIdFor(S, 'k2'), 'ACTIVE'],
        ],
      );
    });

    it('given a scope with no marker, then refresh has no keys to ask about', () => {
      assert.deepEqual(planRefresh(givenEvents(S)), { kind: 'refresh', keys: [] });
      assert.deepEqual(decide(givenEvents(S), when.refresh(S, {})), []);
    });
  });

  it('given ACTIVE and INACTIVE keys, when the provider agrees, then ManagedKeyRefreshed records the same states and the refresh time', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.refresh(S, { k1: inactiveAnswer(S, 'k1'), k2: activeAnswer(S, 'k2') }));
    assert.deepEqual(events, [
      refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'INACTIVE'),
      refreshed(S, 'k2', 'ACTIVE', 'ACTIVE', 'ACTIVE'),
    ]);
    const next = foldOnto(state, events);
    assert.deepEqual(summarise(next, NAMES), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
    });
    // Two given events (revisions 0, 1); the refresh events are folded at revisions 2 and 3.
    for (const [name, time] of [
      ['k1', at(3)],
      ['k2', at(4)],
    ] as const) {
      assert.notEqual(keyOf(state, name).refreshedAt, time);
      assert.equal(keyOf(next, name).refreshedAt, time, `${name} refreshedAt`);
      assert.equal(keyOf(next, name).updatedAt, keyOf(state, name).updatedAt, `${name} updatedAt`);
    }
  });

  it('given an ACTIVE key, when the provider says DISABLED, then it is DISABLED and the scope has no active key', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.refresh(S, { k2: disabledAnswer(S, 'k2') }));
    assert.deepEqual(events, [refreshed(S, 'k2', 'ACTIVE', 'DISABLED', 'DISABLED')]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: null,
      keys: { k1: 'INACTIVE', k2: 'DISABLED' },
    });
  });

  it('given an INACTIVE key, when the provider says DISABLED, then it is DISABLED and the ACTIVE key stays', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.refresh(S, { k1: disabledAnswer(S, 'k1') }));
    assert.deepEqual(events, [refreshed(S, 'k1', 'INACTIVE', 'DISABLED', 'DISABLED')]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'DISABLED', k2: 'ACTIVE' },
    });
  });

  it('given an ACTIVE key, when the provider says INACTIVE and no other key is ACTIVE, then it becomes INACTIVE and the scope has no active key', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.refresh(S, { k2: inactiveAnswer(S, 'k2') }));
    assert.deepEqual(events, [refreshed(S, 'k2', 'ACTIVE', 'INACTIVE', 'INACTIVE')]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: null,
      keys: { k1: 'INACTIVE', k2: 'INACTIVE' },
    });
  });

  it('given a key, when the provider answers FAILED, then the state is kept (providerState FAILED) and the refresh time recorded', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.refresh(S, { k1: failedAnswer(S), k2: failedAnswer(S) }));
    assert.deepEqual(events, [
      refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'FAILED'),
      refreshed(S, 'k2', 'ACTIVE', 'ACTIVE', 'FAILED'),
    ]);
    const next = foldOnto(state, events);
    assert.deepEqual(summarise(next, NAMES), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
    });
    assert.equal(keyOf(next, 'k2').refreshedAt, at(4));
  });

  for (const demotion of ['INACTIVE', 'DISABLED'] as const) {
    it(`given the provider says the ACTIVE key is ${demotion} and an older key ACTIVE, when refreshed, then nothing is promoted (refresh never picks a new ACTIVE key)`, () => {
      const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
      const events = decide(
        state,
        when.refresh(S, { k1: activeAnswer(S, 'k1'), k2: answer(S, 'k2', demotion) }),
      );
      assert.deepEqual(events, [
        refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'ACTIVE'),
        refreshed(S, 'k2', 'ACTIVE', demotion, demotion),
      ]);
      assert.deepEqual(after(state, events), {
        marker: 'ACTIVE',
        active: null,
        keys: { k1: 'INACTIVE', k2: demotion },
      });
    });
  }

  it('given a refresh demoted the ACTIVE key, when a later refresh calls it ACTIVE again, then it is restored (and no older key is)', () => {
    const state = givenEvents(
      S,
      enabled(S, 'k1'),
      rotated(S, 'k2', 'k1'),
      refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'ACTIVE'),
      refreshed(S, 'k2', 'ACTIVE', 'INACTIVE', 'INACTIVE'),
    );
    assert.equal(state.providerDemotedKeyId, keyIdFor(S, 'k2'));
    const events = decide(state, when.refresh(S, { k1: activeAnswer(S, 'k1'), k2: activeAnswer(S, 'k2') }));
    assert.deepEqual(events, [
      refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'ACTIVE'),
      refreshed(S, 'k2', 'INACTIVE', 'ACTIVE', 'ACTIVE'),
    ]);
    const next = foldOnto(state, events);
    assert.deepEqual(summarise(next, NAMES), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
    });
    assert.equal(next.providerDemotedKeyId, null);
  });

  it('given a refresh demoted the ACTIVE key and an admin acted since, when the provider calls it ACTIVE, then it stays INACTIVE', () => {
    const demoted = givenEvents(
      S,
      enabled(S, 'k1'),
      rotated(S, 'k2', 'k1'),
      refreshed(S, 'k2', 'ACTIVE', 'INACTIVE', 'INACTIVE'),
    );
    const state = foldOnto(demoted, [keyDisabled(S, 'k1', 'INACTIVE')]);
    assert.equal(state.providerDemotedKeyId, null);
    const events = decide(state, when.refresh(S, { k2: activeAnswer(S, 'k2') }));
    assert.deepEqual(events, [refreshed(S, 'k2', 'INACTIVE', 'INACTIVE', 'ACTIVE')]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: null,
      keys: { k1: 'DISABLED', k2: 'INACTIVE' },
    });
  });

  it('given the ACTIVE key is still ACTIVE, when the provider calls an INACTIVE key ACTIVE, then it stays INACTIVE (never two ACTIVE)', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.refresh(S, { k1: activeAnswer(S, 'k1'), k2: activeAnswer(S, 'k2') }));
    assert.deepEqual(events, [
      refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'ACTIVE'),
      refreshed(S, 'k2', 'ACTIVE', 'ACTIVE', 'ACTIVE'),
    ]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
    });
  });

  for (const [what, activeReply] of [
    ['is not asked about', undefined],
    ['answers FAILED', failedAnswer(S)],
  ] as const) {
    it(`given the ACTIVE key ${what}, when an INACTIVE key is called ACTIVE, then nothing is promoted`, () => {
      const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
      const answers: Record<string, KeyFacts> = { k1: activeAnswer(S, 'k1') };
      if (activeReply !== undefined) answers.k2 = activeReply;
      const events = decide(state, when.refresh(S, answers));
      assert.deepEqual(events[0], refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'ACTIVE'));
      assert.deepEqual(after(state, events), {
        marker: 'ACTIVE',
        active: 'k2',
        keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
      });
    });
  }

  it('given keys without an answer, DISABLED keys and unknown keys in the answers, when refreshed, then only answered live keys get events', () => {
    const state = foldOnto(threeKeys(), [keyDisabled(S, 'k0', 'INACTIVE')]);
    const events = decide(
      state,
      when.refresh(S, {
        k0: activeAnswer(S, 'k0'),
        k2: activeAnswer(S, 'k2'),
        k9: activeAnswer(S, 'k9'),
      }),
    );
    assert.deepEqual(events, [refreshed(S, 'k2', 'ACTIVE', 'ACTIVE', 'ACTIVE')]);
    assert.deepEqual(decide(state, when.refresh(S, {})), []);
  });

  it('given an ACTIVE key an admin disabled, when the provider calls an INACTIVE key ACTIVE, then the scope still has no active key until a rotate/enable', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'), keyDisabled(S, 'k2', 'ACTIVE'));
    const events = decide(state, when.refresh(S, { k1: activeAnswer(S, 'k1') }));
    assert.deepEqual(events, [refreshed(S, 'k1', 'INACTIVE', 'INACTIVE', 'ACTIVE')]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: null,
      keys: { k1: 'INACTIVE', k2: 'DISABLED' },
    });
  });

  it('given random histories and random provider answers (seeded), when refreshed, then the fold never has two ACTIVE keys and follows the provider', () => {
    const random = seededRandom(0x6b65796c);
    const pick = <T>(items: readonly T[]): T => {
      const item = items[Math.floor(random() * items.length)];
      assert.ok(item !== undefined);
      return item;
    };
    const expectedRefusals: readonly ErrorCode[] = [
      'ERR_KEY_MANAGEMENT_NOT_ENABLED',
      'ERR_KEY_MANAGEMENT_DISABLED',
      'ERR_KEY_DISABLED',
      'ERR_KEY_ALREADY_DISABLED',
      'ERR_KEY_NOT_DISABLED',
      'ERR_KEY_NOT_FOUND',
      'ERR_PROVIDER_KEY_NOT_ACTIVE',
    ];
    /** A valid provider answer about key `name` in a random state. */
    const randomAnswer = (name: string): KeyFacts => {
      const state = pick(PROVIDER_KEY_STATES);
      if (state === 'FAILED') return random() < 0.5 ? failedAnswer(S) : answer(S, name, 'FAILED');
      return answer(S, name, state);
    };
    const randomAnswers = (state: ScopeState): Record<string, KeyFacts> => {
      const answers: Record<string, KeyFacts> = {};
      for (const name of NAMES) {
        if (state.keys.has(keyIdFor(S, name)) && random() < 0.8) answers[name] = randomAnswer(name);
      }
      return answers;
    };
    const checkInvariants = (state: ScopeState, context: string) => {
      const actives = activeKeyIds(state);
      assert.ok(actives.length <= 1, `${context}: two ACTIVE keys`);
      assert.equal(state.activeKeyId, actives[0] ?? null, `${context}: activeKeyId is not the ACTIVE key`);
      if (actives.length === 1) assert.equal(state.marker, 'ACTIVE', `${context}: ACTIVE key without marker`);
    };

    let promotions = 0;
    let demotions = 0;
    for (let run = 0; run < 2000; run++) {
      let state = givenEvents(S, enabled(S, 'k0'));
      const steps = 1 + Math.floor(random() * 12);
      for (let step = 0; step < steps; step++) {
        const name = pick(NAMES);
        const command = pick<() => ScopeCommand>([
          () => when.rotate(random() < 0.8 ? activeAnswer(S, name) : randomAnswer(name)),
          () => when.set(random() < 0.7 ? activeAnswer(S, name) : randomAnswer(name)),
          () => when.enable(random() < 0.7 ? activeAnswer(S, name) : randomAnswer(name)),
          () => when.disableKey(hashFor(S, name)),
          () => when.enableKey(hashFor(S, name)),
          () => when.disableManagement(),
          () => when.refresh(S, randomAnswers(state)),
        ])();
        let events: ScopeEvent[];
        try {
          events = decide(state, command);
        } catch (error) {
          if (error instanceof KeyledgerError && expectedRefusals.includes(error.code)) continue;
          throw error;
        }
        state = foldOnto(state, events);
        checkInvariants(state, `run ${run} step ${step} (${command.type})`);
      }

      const plan = planRefresh(state);
      const answers = randomAnswers(state);
      const events = decide(state, when.refresh(S, answers));
      const context = `run ${run} final refresh`;
      if (plan.kind !== 'refresh') {
        assert.deepEqual(events, [], context);
        continue;
      }
      const answered = plan.keys.filter((k) => refreshAnswers(S, answers).has(k.keyId));
      assert.deepEqual(
        events.map((e) => (e.type === 'ManagedKeyRefreshed' ? [e.data.keyId, e.data.previousState] : e.type)),
        answered.map((k) => [k.keyId, k.state]),
        `${context}: one event per answered live key, in ledger order`,
      );
      const next = foldOnto(state, events);
      checkInvariants(next, context);

      const providerSays = new Map<KeyId, ProviderKeyState>(
        [...refreshAnswers(S, answers)].map(([id, facts]) => [id, facts.state]),
      );
      for (const key of plan.keys) {
        const said = providerSays.get(key.keyId);
        const now = next.keys.get(key.keyId)?.state;
        if (said === undefined || said === 'FAILED') assert.equal(now, key.state, `${context}: kept`);
        if (said === 'DISABLED') assert.equal(now, 'DISABLED', `${context}: DISABLED followed`);
        if (said === 'INACTIVE') assert.equal(now, 'INACTIVE', `${context}: INACTIVE followed`);
        if (now === 'ACTIVE')
          assert.ok(said === undefined || said === 'ACTIVE' || said === 'FAILED', context);
        if (key.state === 'ACTIVE' && now !== 'ACTIVE') demotions++;
      }
      // Promotion: only the key an earlier refresh demoted, only if it is called ACTIVE and no key is ACTIVE.
      const stillActive = plan.keys.some(
        (k) =>
          k.state === 'ACTIVE' && !['INACTIVE', 'DISABLED'].includes(providerSays.get(k.keyId) ?? 'FAILED'),
      );
      const restorable = plan.keys.filter(
        (k) =>
          k.keyId === state.providerDemotedKeyId &&
          k.state === 'INACTIVE' &&
          providerSays.get(k.keyId) === 'ACTIVE',
      );
      const promoted = plan.keys.filter(
        (k) => k.state === 'INACTIVE' && next.keys.get(k.keyId)?.state === 'ACTIVE',
      );
      if (stillActive || restorable.length === 0) {
        assert.deepEqual(promoted, [], `${context}: nothing promoted`);
      } else {
        assert.deepEqual(
          promoted.map((k) => k.keyId),
          restorable.map((k) => k.keyId),
          `${context}: the key a refresh demoted is restored`,
        );
        promotions++;
      }
    }
    // The loop must have exercised the interesting cases.
    assert.ok(promotions > 5, `only ${promotions} promotions`);
    assert.ok(demotions > 10, `only ${demotions} demotions`);
  });

  describe('checkRefreshAnswer', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const k1 = keyOf(state, 'k1');

    it('given a matching answer, then it is returned unchanged', () => {
      for (const reply of [
        activeAnswer(S, 'k1'),
        inactiveAnswer(S, 'k1'),
        disabledAnswer(S, 'k1'),
        failedAnswer(S),
        answer(S, 'k1', 'FAILED'),
      ]) {
        assert.equal(checkRefreshAnswer(state, k1, reply), reply);
      }
    });

    it('given an answer with other key bytes, then ERR_PROVIDER_INVALID_ANSWER', () => {
      throwsCode(
        () => checkRefreshAnswer(state, k1, activeAnswer(S, 'k1', { checksum: checksumFor('k1', 'other') })),
        'ERR_PROVIDER_INVALID_ANSWER',
        { scope: formatScope(S), metadataHash: k1.metadataHash },
      );
      throwsCode(
        () =>
          checkRefreshAnswer(
            state,
            k1,
            answer(S, 'k1', 'DISABLED', { checksum: checksumFor('k1', 'other') }),
          ),
        'ERR_PROVIDER_INVALID_ANSWER',
      );
    });

    it('given an answer about another key, then ERR_PROVIDER_INVALID_ANSWER', () => {
      throwsCode(() => checkRefreshAnswer(state, k1, activeAnswer(S, 'k2')), 'ERR_PROVIDER_INVALID_ANSWER', {
        metadataHash: k1.metadataHash,
      });
      throwsCode(() => checkRefreshAnswer(state, k1, disabledAnswer(S, 'k2')), 'ERR_PROVIDER_INVALID_ANSWER');
    });

    it('given a usable answer without bytes, then ERR_PROVIDER_INVALID_ANSWER', () => {
      throwsCode(
        () => checkRefreshAnswer(state, k1, inactiveAnswer(S, 'k1', { checksum: null })),
        'ERR_PROVIDER_INVALID_ANSWER',
      );
    });

    it('given an answer about another scope, then ERR_PROVIDER_WRONG_SCOPE', () => {
      throwsCode(
        () => checkRefreshAnswer(state, k1, activeAnswer(S, 'k1', { answeredScope: OTHER_SCOPE })),
        'ERR_PROVIDER_WRONG_SCOPE',
      );
    });
  });
});

describe('setManagedKey', () => {
  it('given an ACTIVE scope, when set to a new key, then ManagedKeySet makes it ACTIVE and the previous one INACTIVE', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    const events = decide(state, when.set(activeAnswer(S, 'k2'), OTHER_STK));
    assert.deepEqual(events, [keySet(S, 'k2', 'k1', OTHER_STK)]);
    assert.deepEqual(newKeysIn(state, events), [recordFor(S, 'k2', OTHER_STK)]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'INACTIVE', k2: 'ACTIVE' },
    });
  });

  it('given a known INACTIVE key, when set to it, then it is promoted without a new key', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events = decide(state, when.set(activeAnswer(S, 'k1'), OTHER_STK));
    assert.deepEqual(events, [keySet(S, 'k1', 'k2', STK)]);
    assert.deepEqual(newKeysIn(state, events), []);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k1',
      keys: { k1: 'ACTIVE', k2: 'INACTIVE' },
    });
  });

  it('given a new key the provider reports INACTIVE, when set to it, then it becomes the ACTIVE key (usable bytes suffice)', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    const events = decide(state, when.set(inactiveAnswer(S, 'k2')));
    assert.deepEqual(events, [keySet(S, 'k2', 'k1')]);
    assert.deepEqual(after(state, events).active, 'k2');
  });

  it('given the key is already the ACTIVE key, when set to it, then nothing is recorded', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    assert.deepEqual(decide(state, when.set(activeAnswer(S, 'k1'))), []);
  });

  for (const reply of [disabledAnswer(S, 'k2'), failedAnswer(S), answer(S, 'k2', 'FAILED')]) {
    it(`given an ACTIVE scope, when the provider reports the key ${reply.state}${reply.key === null ? ' (no key)' : ''}, then ERR_PROVIDER_KEY_NOT_ACTIVE`, () => {
      const state = givenEvents(S, enabled(S, 'k1'));
      throwsCode(() => decide(state, when.set(reply)), 'ERR_PROVIDER_KEY_NOT_ACTIVE', {
        scope: formatScope(S),
        providerState: reply.state,
      });
    });
  }

  for (const [what, state] of [
    [
      'a scope whose key management was disabled',
      givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1')),
    ],
    ['a scope with a DISABLED marker', givenEvents(S, enableFailed(S, 'DISABLED'))],
  ] as const) {
    it(`given ${what}, when set, then ERR_KEY_MANAGEMENT_DISABLED`, () => {
      throwsCode(() => decide(state, when.set(activeAnswer(S, 'k2'))), 'ERR_KEY_MANAGEMENT_DISABLED', {
        scope: formatScope(S),
      });
    });
  }

  for (const [what, state] of [
    ['a scope with no marker', givenEvents(S)],
    ['a scope with a FAILED marker', givenEvents(S, enableFailed(S, 'FAILED'))],
  ] as const) {
    it(`given ${what}, when set to a key, then it becomes ACTIVE with an ACTIVE marker`, () => {
      const events = decide(state, when.set(activeAnswer(S, 'k1')));
      assert.deepEqual(events, [keySet(S, 'k1', null)]);
      assert.deepEqual(after(state, events), { marker: 'ACTIVE', active: 'k1', keys: { k1: 'ACTIVE' } });
    });
  }

  it('given an ACTIVE marker whose active key was disabled, when set to a new key, then previousKeyId is null', () => {
    const state = givenEvents(S, enabled(S, 'k1'), keyDisabled(S, 'k1', 'ACTIVE'));
    const events = decide(state, when.set(activeAnswer(S, 'k2')));
    assert.deepEqual(events, [keySet(S, 'k2', null)]);
    assert.deepEqual(after(state, events), {
      marker: 'ACTIVE',
      active: 'k2',
      keys: { k1: 'DISABLED', k2: 'ACTIVE' },
    });
  });

  it('given an ACTIVE scope, when the provider answers about another scope, then ERR_PROVIDER_WRONG_SCOPE', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(
      () => decide(state, when.set(activeAnswer(S, 'k2', { answeredScope: OTHER_SCOPE }))),
      'ERR_PROVIDER_WRONG_SCOPE',
    );
  });

  it('given a known INACTIVE key, when the provider returns it with another checksum, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    throwsCode(
      () => decide(state, when.set(activeAnswer(S, 'k1', { checksum: checksumFor('k1', 'other') }))),
      'ERR_PROVIDER_INVALID_ANSWER',
      { metadataHash: hashFor(S, 'k1') },
    );
  });

  it('given a known DISABLED key, when set to it, then ERR_KEY_DISABLED', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'), keyDisabled(S, 'k1', 'INACTIVE'));
    throwsCode(() => decide(state, when.set(activeAnswer(S, 'k1'))), 'ERR_KEY_DISABLED');
  });

  it('given an ACTIVE scope, when the provider answers ACTIVE without a checksum, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(
      () => decide(state, when.set(activeAnswer(S, 'k2', { checksum: null }))),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
  });

  it('given the ACTIVE key, when the provider returns it with another checksum, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(
      () => decide(state, when.set(activeAnswer(S, 'k1', { checksum: checksumFor('k1', 'other') }))),
      'ERR_PROVIDER_INVALID_ANSWER',
    );
  });
});

describe('cache commands', () => {
  it('given a known key, when its cache entry is ejected, then CacheEntryEjected names the scope and key id', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'), keyDisabled(S, 'k1', 'INACTIVE'));
    for (const name of ['k1', 'k2']) {
      const event = decideEjectCacheEntry(state, hashFor(S, name));
      assert.deepEqual(event, { type: 'CacheEntryEjected', data: { ...S, keyId: keyIdFor(S, name) } });
      assertStorable([event]);
    }
  });

  it('given an unknown metadata hash, when ejected, then ERR_KEY_NOT_FOUND', () => {
    const state = givenEvents(S, enabled(S, 'k1'));
    throwsCode(() => decideEjectCacheEntry(state, hashFor(S, 'k9')), 'ERR_KEY_NOT_FOUND', {
      scope: formatScope(S),
      metadataHash: hashFor(S, 'k9'),
    });
  });

  it('given any scope, when ejected without a hash, then the whole scope is ejected (keyId null)', () => {
    for (const state of [givenEvents(S), givenEvents(S, enabled(S, 'k1'))]) {
      assert.deepEqual(decideEjectCacheEntry(state, null), {
        type: 'CacheEntryEjected',
        data: { ...S, keyId: null },
      });
    }
  });

  it('when the cache is cleared, then CacheCleared has no data', () => {
    assert.deepEqual(decideClearCache(), { type: 'CacheCleared', data: {} });
    assertStorable([decideClearCache()]);
  });
});

describe('newKeysIn', () => {
  it('given known and new keys in the events, then only the new ones are listed, in order', () => {
    const state = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
    const events: DomainEvent[] = [
      enabled(S, 'k1'),
      rotated(S, 'k3', 'k2'),
      keySet(S, 'k2', 'k3'),
      keySet(S, 'k4', 'k2'),
      keyDisabled(S, 'k1', 'INACTIVE'),
      refreshed(S, 'k2', 'ACTIVE', 'ACTIVE', 'ACTIVE'),
      decideClearCache(),
    ];
    assert.deepEqual(newKeysIn(state, events), [recordFor(S, 'k3'), recordFor(S, 'k4')]);
    assert.deepEqual(newKeysIn(state, []), []);
  });
});

describe('key transitions (keyState.ts)', () => {
  const allowed: Record<KeyState, readonly KeyState[]> = {
    ACTIVE: ['INACTIVE', 'DISABLED'],
    INACTIVE: ['ACTIVE', 'DISABLED', 'DESTROYED'],
    DISABLED: ['INACTIVE', 'DESTROYED'],
    FAILED: [],
    DESTROYED: [],
  };

  it('KEY_TRANSITIONS is the documented table', () => {
    assert.deepEqual(
      Object.fromEntries(KEY_STATES.map((s) => [s, [...KEY_TRANSITIONS[s]].sort()])),
      Object.fromEntries(KEY_STATES.map((s) => [s, [...allowed[s]].sort()])),
    );
  });

  for (const from of KEY_STATES) {
    for (const to of KEY_STATES) {
      const ok = allowed[from].includes(to);
      it(`${from} → ${to} is ${ok ? 'allowed' : 'refused with ERR_INVALID_TRANSITION'}`, () => {
        assert.equal(canTransition(from, to), ok);
        assert.equal(canTransition(from, to), KEY_TRANSITIONS[from].includes(to));
        if (ok) assertTransition(from, to, keyIdFor(S, 'k1'));
        else
          throwsCode(() => assertTransition(from, to, keyIdFor(S, 'k1')), 'ERR_INVALID_TRANSITION', {
            keyId: keyIdFor(S, 'k1'),
            from,
            to,
          });
      });
    }
  }

  it('FAILED and DESTROYED have no way out, and no state goes to itself or to FAILED', () => {
    for (const to of KEY_STATES) {
      assert.equal(canTransition('FAILED', to), false);
      assert.equal(canTransition('DESTROYED', to), false);
    }
    for (const state of KEY_STATES) {
      assert.equal(canTransition(state, state), false);
      assert.equal(canTransition(state, 'FAILED'), false);
    }
  });
});
