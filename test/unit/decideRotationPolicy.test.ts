import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  emptyRotationPoliciesView,
  evolveRotationPolicies,
  type RotationPoliciesView,
} from '../../projections/rotationPolicies.js';
import {
  decideClearRotationPolicy,
  decideSetRotationPolicy,
  formatPolicyTarget,
  type RotationPolicyTarget,
} from '../../src/domain/decideRotationPolicy.js';
import { type DomainEvent, eventDataSchemas, type LedgerEvent } from '../../src/domain/events.js';
import { formatScope } from '../../src/domain/identities.js';
import { OTHER_SCOPE, SCOPE, throwsCode } from '../helpers/domainFixtures.js';

const NOW = Date.parse('2026-12-03T08:00:00.000Z');
const DAY = 86_400_000;
const scopeTarget: RotationPolicyTarget = { kind: 'scope', scope: SCOPE };
const defaultTarget: RotationPolicyTarget = { kind: 'default' };
const stkTarget: RotationPolicyTarget = { kind: 'system' };

/** The events as the store hands them back (each fits its schema), folded by the projection. */
function given(...events: DomainEvent[]): RotationPoliciesView {
  let view = emptyRotationPoliciesView();
  events.forEach((event, i) => {
    const parsed = eventDataSchemas[event.type].safeParse(event.data);
    assert.ok(parsed.success, `${event.type} fits its schema: ${parsed.error?.message}`);
    view = evolveRotationPolicies(view, {
      type: event.type,
      data: parsed.data,
      meta: {
        schemaVersion: 1,
        actor: `admin-${i}`,
        reason: 'policy',
        correlationId: `c${i}`,
        causationId: null,
        occurredAt: new Date(NOW + i * 1000).toISOString(),
      },
      streamName: 'kl-policies',
      revision: BigInt(i),
      position: BigInt(i + 1),
    } as LedgerEvent);
  });
  return view;
}

function set(
  view: RotationPoliciesView,
  target: RotationPolicyTarget,
  periodMs: number,
  inactive: number | null = null,
) {
  return decideSetRotationPolicy(view, target, { periodMs, disableInactiveAfterMs: inactive });
}

describe('rotation policies: given the policies recorded, when one is set or cleared, then', () => {
  it('no policy, set for a scope: RotationPolicySet names the scope; the fold records terms, time and actor', () => {
    const events = set(given(), scopeTarget, 90 * DAY, 30 * DAY);
    assert.deepEqual(events, [
      {
        type: 'RotationPolicySet',
        data: {
          target: { kind: 'scope', custodian: SCOPE.custodian, namespace: SCOPE.namespace },
          periodMs: 90 * DAY,
          disableInactiveAfterMs: 30 * DAY,
        },
      },
    ]);
    const view = given(...events);
    assert.deepEqual(view.policyOf(scopeTarget), {
      periodMs: 90 * DAY,
      disableInactiveAfterMs: 30 * DAY,
      setAt: new Date(NOW).toISOString(),
      setBy: 'admin-0',
    });
    assert.equal(view.policyOf({ kind: 'scope', scope: OTHER_SCOPE }), null, 'another scope has none');
    assert.equal(view.default, null);
  });

  it('the default and the system key each have their own policy', () => {
    const view = given(...set(given(), defaultTarget, 30 * DAY), ...set(given(), stkTarget, 365 * DAY));
    assert.equal(view.default?.periodMs, 30 * DAY);
    assert.equal(view.system?.periodMs, 365 * DAY);
    assert.equal(view.scopes.size, 0);
  });

  it('the same terms again: nothing (no event); other terms: a new RotationPolicySet replaces the old', () => {
    const first = set(given(), scopeTarget, 90 * DAY);
    assert.deepEqual(set(given(...first), scopeTarget, 90 * DAY), []);
    const changed = set(given(...first), scopeTarget, 30 * DAY);
    assert.equal(changed.length, 1);
    assert.equal(given(...first, ...changed).policyOf(scopeTarget)?.periodMs, 30 * DAY);
    assert.equal(given(...first, ...changed).policyOf(scopeTarget)?.setBy, 'admin-1');
  });

  it('cleared: RotationPolicyCleared, and the target has none; the others keep theirs', () => {
    const recorded = [...set(given(), scopeTarget, DAY), ...set(given(), defaultTarget, 2 * DAY)];
    const cleared = decideClearRotationPolicy(given(...recorded), scopeTarget);
    assert.deepEqual(cleared, [
      {
        type: 'RotationPolicyCleared',
        data: { target: { kind: 'scope', custodian: SCOPE.custodian, namespace: SCOPE.namespace } },
      },
    ]);
    const view = given(...recorded, ...cleared);
    assert.equal(view.policyOf(scopeTarget), null);
    assert.equal(view.default?.periodMs, 2 * DAY);
  });

  it('clearing a policy the target does not have: ERR_ROTATION_POLICY_NOT_FOUND naming it', () => {
    throwsCode(() => decideClearRotationPolicy(given(), scopeTarget), 'ERR_ROTATION_POLICY_NOT_FOUND', {
      target: 'scope',
      scope: formatScope(SCOPE),
    });
    throwsCode(() => decideClearRotationPolicy(given(), stkTarget), 'ERR_ROTATION_POLICY_NOT_FOUND', {
      target: 'system',
    });
  });

  it('durations out of 1s..10 years, or an INACTIVE age for the system key: ERR_INVALID_ARGUMENT', () => {
    throwsCode(() => set(given(), scopeTarget, 999), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => set(given(), scopeTarget, 0), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => set(given(), scopeTarget, 3651 * DAY), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => set(given(), scopeTarget, 1500.5), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => set(given(), scopeTarget, DAY, 10), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => set(given(), stkTarget, DAY, DAY), 'ERR_INVALID_ARGUMENT');
    assert.equal(set(given(), scopeTarget, 1000).length, 1, '1s is the shortest period');
  });

  it('targets are written as the scope, @default and @stk', () => {
    assert.equal(formatPolicyTarget(scopeTarget), formatScope(SCOPE));
    assert.equal(formatPolicyTarget(defaultTarget), '@default');
    assert.equal(formatPolicyTarget(stkTarget), '@stk');
  });

  it('the stored shape refuses an unknown target kind and a scope target without its scope', () => {
    const schema = eventDataSchemas.RotationPolicySet;
    assert.equal(
      schema.safeParse({ target: { kind: 'tenant' }, periodMs: DAY, disableInactiveAfterMs: null }).success,
      false,
    );
    assert.equal(
      schema.safeParse({ target: { kind: 'scope' }, periodMs: DAY, disableInactiveAfterMs: null }).success,
      false,
    );
    assert.equal(
      schema.safeParse({ target: { kind: 'default' }, periodMs: 10, disableInactiveAfterMs: null }).success,
      false,
    );
  });
});
