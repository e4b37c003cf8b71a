import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ClaimKeyCommand,
  decideKeyClaim,
  emptyKeyClaimState,
  evolveKeyClaim,
  type KeyClaimState,
} from '../../src/domain/decideKeyClaim.js';
import { eventDataSchemas, type KeyClaimEvent } from '../../src/domain/events.js';
import { formatScope, type KeyScope } from '../../src/domain/identities.js';
import { checksumFor, keyIdFor, OTHER_SCOPE, SCOPE, throwsCode } from '../helpers/domainFixtures.js';

const CHECKSUM = checksumFor('master');

/** The claim events as the store hands them back (each fits its schema), folded. */
function given(...events: KeyClaimEvent[]): KeyClaimState {
  let state = emptyKeyClaimState();
  events.forEach((event, i) => {
    const parsed = eventDataSchemas[event.type].safeParse(event.data);
    assert.ok(parsed.success, `${event.type} fits its schema: ${parsed.error?.message}`);
    state = evolveKeyClaim(state, { type: event.type, data: parsed.data }, BigInt(i));
  });
  return state;
}

function claimed(scope: KeyScope, name = 'master'): KeyClaimEvent {
  return { type: 'ManagedKeyClaimed', data: { ...scope, keyId: keyIdFor(scope, name), checksum: CHECKSUM } };
}

function claim(scope: KeyScope, recordedIn: KeyScope | null = null): ClaimKeyCommand {
  return {
    type: 'ClaimKey',
    scope,
    keyId: keyIdFor(scope, 'master'),
    checksum: CHECKSUM,
    alias: 'master',
    recordedIn: recordedIn === null ? null : formatScope(recordedIn),
  };
}

describe('decideKeyClaim: a key never serves two scopes', () => {
  it('given no claim and no other scope recording the key, when claimed, then ManagedKeyClaimed for the scope', () => {
    const events = decideKeyClaim(given(), claim(SCOPE));
    assert.deepEqual(events, [claimed(SCOPE)]);
    assert.ok(eventDataSchemas.ManagedKeyClaimed.safeParse(events[0]?.data).success);
  });

  it('given a claim for the same scope, when claimed again (a retry, a resume after a crash), then nothing', () => {
    assert.deepEqual(decideKeyClaim(given(claimed(SCOPE)), claim(SCOPE)), []);
  });

  it('given a claim for another scope, when claimed, then ERR_KEY_IN_OTHER_SCOPE naming it', () => {
    throwsCode(() => decideKeyClaim(given(claimed(OTHER_SCOPE)), claim(SCOPE)), 'ERR_KEY_IN_OTHER_SCOPE', {
      scope: formatScope(SCOPE),
      otherScope: formatScope(OTHER_SCOPE),
      checksum: CHECKSUM,
    });
  });

  it('given no claim but the view recording the key under another scope (before claims, or enable/rotate), then refused', () => {
    throwsCode(() => decideKeyClaim(given(), claim(SCOPE, OTHER_SCOPE)), 'ERR_KEY_IN_OTHER_SCOPE', {
      scope: formatScope(SCOPE),
      otherScope: formatScope(OTHER_SCOPE),
    });
  });

  it('the claim decides over the view: claimed for this scope, a view naming another is not consulted', () => {
    // The view is only read for unclaimed keys (KeyClaims.load); the claim is the authority.
    assert.deepEqual(decideKeyClaim(given(claimed(SCOPE)), claim(SCOPE, OTHER_SCOPE)), []);
  });

  it('a claim is never replaced: a second event on the stream leaves the first standing', () => {
    const state = given(claimed(SCOPE), claimed(OTHER_SCOPE));
    assert.equal(state.claim?.scope, formatScope(SCOPE));
    assert.equal(state.revision, 1n);
    throwsCode(() => decideKeyClaim(state, claim(OTHER_SCOPE)), 'ERR_KEY_IN_OTHER_SCOPE');
  });

  it('the claim records the key id and checksum, never bytes', () => {
    const [event] = decideKeyClaim(given(), claim(SCOPE));
    assert.deepEqual(Object.keys(event?.data ?? {}).sort(), ['checksum', 'custodian', 'keyId', 'namespace']);
  });
});
