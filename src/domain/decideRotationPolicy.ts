import { KeyledgerError } from './errors.js';
import type { EventOf } from './events.js';
import { formatScope, type KeyScope } from './identities.js';

/**
 * The rules of rotation policies (stream `<prefix>policies`): a scope's own policy, the default
 * for every scope without one, and the system key's. Setting, changing and clearing a policy are
 * events with actor and reason, so the policy history is auditable like the keys'. Pure: the
 * caller brings the policies recorded so far.
 */

/** Whose policy. */
export type RotationPolicyTarget =
  | { readonly kind: 'scope'; readonly scope: KeyScope }
  | { readonly kind: 'default' }
  | { readonly kind: 'system' };

/** What a policy asks for, in milliseconds. */
export interface RotationPolicyTerms {
  /** Rotate the ACTIVE key once it has been ACTIVE this long. */
  readonly periodMs: number;
  /** Disable an INACTIVE key once it has been INACTIVE this long; null: never (scopes only). */
  readonly disableInactiveAfterMs: number | null;
}

/** A recorded policy: its terms, and when and by whom it was set. */
export interface RotationPolicy extends RotationPolicyTerms {
  readonly setAt: string;
  readonly setBy: string;
}

/** What the decisions need of the recorded policies (projections/rotationPolicies.ts's view is one). */
export interface RotationPolicyState {
  policyOf(target: RotationPolicyTarget): RotationPolicy | null;
}

/** 1 second to 10 years: what the event schema accepts. */
export const MIN_POLICY_MS = 1000;
export const MAX_POLICY_MS = 3650 * 86_400_000;

/** How a target is named in errors, results and the CLI: the scope, `@default` or `@stk`. */
export function formatPolicyTarget(target: RotationPolicyTarget): string {
  switch (target.kind) {
    case 'scope':
      return formatScope(target.scope);
    case 'default':
      return '@default';
    case 'system':
      return '@stk';
    default: {
      const unreachable: never = target;
      return unreachable;
    }
  }
}

type EventTarget = EventOf<'RotationPolicySet'>['data']['target'];

/** The target as events record it. */
export function eventTarget(target: RotationPolicyTarget): EventTarget {
  return target.kind === 'scope'
    ? { kind: 'scope', custodian: target.scope.custodian, namespace: target.scope.namespace }
    : { kind: target.kind };
}

function checkDuration(name: string, ms: number): void {
  if (!(Number.isSafeInteger(ms) && ms >= MIN_POLICY_MS && ms <= MAX_POLICY_MS)) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${name} must be from 1s to 10 years`, {
      [name]: Number.isFinite(ms) ? ms : null,
    });
  }
}

/**
 * Sets (or changes) the target's policy. The same terms again change nothing (no event): a script
 * that sets its policies on every deploy does not grow the history. The system key's policy has no
 * INACTIVE age: old system keys are retired by rewrap and retire-stk, never disabled.
 */
export function decideSetRotationPolicy(
  state: RotationPolicyState,
  target: RotationPolicyTarget,
  terms: RotationPolicyTerms,
): EventOf<'RotationPolicySet'>[] {
  checkDuration('period', terms.periodMs);
  if (terms.disableInactiveAfterMs !== null) {
    checkDuration('disableInactiveAfter', terms.disableInactiveAfterMs);
    if (target.kind === 'system') {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'the system key’s policy has no INACTIVE age: old system keys are retired (rewrap, retire-stk)',
        { target: '@stk', disableInactiveAfter: terms.disableInactiveAfterMs },
      );
    }
  }
  const current = state.policyOf(target);
  if (
    current !== null &&
    current.periodMs === terms.periodMs &&
    current.disableInactiveAfterMs === terms.disableInactiveAfterMs
  ) {
    return [];
  }
  return [
    {
      type: 'RotationPolicySet',
      data: {
        target: eventTarget(target),
        periodMs: terms.periodMs,
        disableInactiveAfterMs: terms.disableInactiveAfterMs,
      },
    },
  ];
}

/** Clears the target's own policy; a target without one is ERR_ROTATION_POLICY_NOT_FOUND. */
export function decideClearRotationPolicy(
  state: RotationPolicyState,
  target: RotationPolicyTarget,
): EventOf<'RotationPolicyCleared'>[] {
  if (state.policyOf(target) === null) {
    throw new KeyledgerError(
      'ERR_ROTATION_POLICY_NOT_FOUND',
      `${formatPolicyTarget(target)} has no rotation policy of its own`,
      target.kind === 'scope'
        ? { target: 'scope', scope: formatScope(target.scope) }
        : { target: target.kind },
    );
  }
  return [{ type: 'RotationPolicyCleared', data: { target: eventTarget(target) } }];
}
