import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RotationPolicy } from '../../src/domain/decideRotationPolicy.js';
import {
  effectivePolicy,
  isRotationDue,
  keyAgeMs,
  scopeRotationStatus,
  systemKeyRotationStatus,
} from '../../src/domain/rotationDue.js';
import {
  at,
  enabled,
  givenEvents,
  keyIdFor,
  managementDisabled,
  rotated,
  SCOPE,
} from '../helpers/domainFixtures.js';

const MINUTE = 60_000;

/** The fixtures' clock: event n of a scope happens at minute n (at(n)); `minute(n)` reads it. */
function minute(n: number): Date {
  return new Date(at(n));
}

function policy(periodMinutes: number, disableInactiveAfterMinutes: number | null = null): RotationPolicy {
  return {
    periodMs: periodMinutes * MINUTE,
    disableInactiveAfterMs:
      disableInactiveAfterMinutes === null ? null : disableInactiveAfterMinutes * MINUTE,
    setAt: at(0),
    setBy: 'admin',
  };
}

describe('rotation due: given a scope and a policy, when the clock reads t, then', () => {
  // Enabled at minute 1 (the scope's first event).
  const enabledScope = givenEvents(SCOPE, enabled(SCOPE, 'k1'));

  it('period not passed: not due, due at activation + period', () => {
    const status = scopeRotationStatus(enabledScope, policy(60), minute(60));
    assert.equal(status.activeSince, at(1));
    assert.equal(status.nextRotationDueAt, at(61));
    assert.equal(status.rotationDue, false);
  });

  it('period passed (to the millisecond): due', () => {
    assert.equal(scopeRotationStatus(enabledScope, policy(60), minute(61)).rotationDue, true);
    assert.equal(
      isRotationDue(enabledScope, policy(60), new Date(Date.parse(at(61)) - 1)),
      false,
      'one millisecond before',
    );
    assert.equal(isRotationDue(enabledScope, policy(60), minute(500)), true);
  });

  it('a rotation starts the period again from the new key’s activation', () => {
    // k2 rotated in at minute 2: due at 62, whatever k1's age.
    const state = givenEvents(SCOPE, enabled(SCOPE, 'k1'), rotated(SCOPE, 'k2', 'k1'));
    const status = scopeRotationStatus(state, policy(60), minute(61));
    assert.equal(status.activeSince, at(2));
    assert.equal(status.nextRotationDueAt, at(62));
    assert.equal(status.rotationDue, false);
  });

  it('policy changed mid-period: the new period counts from the same activation, at once', () => {
    // 30 minutes into a 60-minute period the policy becomes 20 minutes: overdue since minute 21.
    const shorter = scopeRotationStatus(enabledScope, policy(20), minute(31));
    assert.equal(shorter.nextRotationDueAt, at(21));
    assert.equal(shorter.rotationDue, true);
    // …or 120 minutes: what was due at minute 61 is not due then any more.
    const longer = scopeRotationStatus(enabledScope, policy(120), minute(61));
    assert.equal(longer.nextRotationDueAt, at(121));
    assert.equal(longer.rotationDue, false);
  });

  it('policy cleared (none in force): nothing is ever due', () => {
    const status = scopeRotationStatus(enabledScope, null, minute(100_000));
    assert.deepEqual(status, {
      activeSince: at(1),
      nextRotationDueAt: null,
      rotationDue: false,
      inactiveKeysDue: [],
    });
  });

  it('a disabled scope is never rotated by a schedule', () => {
    const disabled = givenEvents(SCOPE, enabled(SCOPE, 'k1'), managementDisabled(SCOPE, 'k1'));
    const status = scopeRotationStatus(disabled, policy(1), minute(1000));
    assert.equal(status.nextRotationDueAt, null);
    assert.equal(status.rotationDue, false);
  });

  it('INACTIVE keys past the age limit are due for disabling; the age counts from when they went INACTIVE', () => {
    // k1 INACTIVE since minute 2 (the rotation); limit 30 minutes.
    const state = givenEvents(SCOPE, enabled(SCOPE, 'k1'), rotated(SCOPE, 'k2', 'k1'));
    assert.deepEqual(scopeRotationStatus(state, policy(600, 30), minute(31)).inactiveKeysDue, []);
    assert.deepEqual(scopeRotationStatus(state, policy(600, 30), minute(32)).inactiveKeysDue, [
      {
        keyId: keyIdFor(SCOPE, 'k1'),
        metadataHash: state.keys.get(keyIdFor(SCOPE, 'k1'))?.metadataHash,
        inactiveSince: at(2),
        disableDueAt: at(32),
      },
    ]);
    // No age limit in the policy: none.
    assert.deepEqual(scopeRotationStatus(state, policy(600), minute(10_000)).inactiveKeysDue, []);
  });

  it('a scope’s own policy wins over the default; without either, none', () => {
    const own = policy(10);
    const fallback = policy(20);
    assert.equal(effectivePolicy(own, fallback)?.source, 'scope');
    assert.equal(effectivePolicy(own, fallback)?.periodMs, 10 * MINUTE);
    assert.equal(effectivePolicy(null, fallback)?.source, 'default');
    assert.equal(effectivePolicy(null, null), null);
  });

  it('the system key: its period counts from when the latest STK was recorded', () => {
    const latest = { recordedAt: at(0) };
    assert.equal(systemKeyRotationStatus(latest, policy(60), minute(59)).rotationDue, false);
    assert.deepEqual(systemKeyRotationStatus(latest, policy(60), minute(60)), {
      recordedAt: at(0),
      nextRotationDueAt: at(60),
      rotationDue: true,
    });
    assert.equal(systemKeyRotationStatus(latest, null, minute(1e6)).rotationDue, false);
    assert.equal(systemKeyRotationStatus(null, policy(1), minute(1e6)).rotationDue, false);
  });

  it('a key’s age runs from when it entered the ledger, never negative', () => {
    assert.equal(keyAgeMs({ createdAt: at(1) }, minute(61)), 60 * MINUTE);
    assert.equal(keyAgeMs({ createdAt: at(5) }, minute(1)), 0);
  });
});
