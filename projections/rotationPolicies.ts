import type {
  RotationPolicy,
  RotationPolicyState,
  RotationPolicyTarget,
} from '../src/domain/decideRotationPolicy.js';
import type { LedgerEvent, ScopeKey } from '../src/domain/index.js';
import { keyScope, scopeKey } from '../src/domain/index.js';

type RecordedTarget = Extract<LedgerEvent, { type: 'RotationPolicySet' }>['data']['target'];

/** A scope's own policy, with the scope it is for. */
export interface ScopePolicy {
  readonly target: Extract<RotationPolicyTarget, { kind: 'scope' }>;
  readonly policy: RotationPolicy;
}

/**
 * Every rotation policy in force: per scope, the default, the system key's. Policies are few and
 * change rarely, so a change copies the view and it stays a value (as the API tokens' view does).
 */
export interface RotationPoliciesView extends RotationPolicyState {
  readonly scopes: ReadonlyMap<ScopeKey, ScopePolicy>;
  readonly default: RotationPolicy | null;
  readonly system: RotationPolicy | null;
}

function viewOf(
  scopes: RotationPoliciesView['scopes'],
  fallback: RotationPolicy | null,
  system: RotationPolicy | null,
): RotationPoliciesView {
  return {
    scopes,
    default: fallback,
    system,
    policyOf(target) {
      switch (target.kind) {
        case 'scope':
          return scopes.get(scopeKey(target.scope))?.policy ?? null;
        case 'default':
          return fallback;
        case 'system':
          return system;
        default: {
          const unreachable: never = target;
          return unreachable;
        }
      }
    },
  };
}

export function emptyRotationPoliciesView(): RotationPoliciesView {
  return viewOf(new Map(), null, null);
}

/** The target as the domain names it. */
export function policyTargetOf(recorded: RecordedTarget): RotationPolicyTarget {
  return recorded.kind === 'scope'
    ? { kind: 'scope', scope: keyScope(recorded.custodian, recorded.namespace) }
    : { kind: recorded.kind };
}

function withPolicy(
  view: RotationPoliciesView,
  target: RotationPolicyTarget,
  policy: RotationPolicy | null,
): RotationPoliciesView {
  switch (target.kind) {
    case 'scope': {
      const scopes = new Map(view.scopes);
      if (policy === null) scopes.delete(scopeKey(target.scope));
      else scopes.set(scopeKey(target.scope), { target, policy });
      return viewOf(scopes, view.default, view.system);
    }
    case 'default':
      return viewOf(view.scopes, policy, view.system);
    case 'system':
      return viewOf(view.scopes, view.default, policy);
    default: {
      const unreachable: never = target;
      return unreachable;
    }
  }
}

/** Folds the policy events; every other event leaves the view as it is. Pure. */
export function evolveRotationPolicies(view: RotationPoliciesView, event: LedgerEvent): RotationPoliciesView {
  switch (event.type) {
    case 'RotationPolicySet':
      return withPolicy(view, policyTargetOf(event.data.target), {
        periodMs: event.data.periodMs,
        disableInactiveAfterMs: event.data.disableInactiveAfterMs,
        setAt: event.meta.occurredAt,
        setBy: event.meta.actor,
      });
    case 'RotationPolicyCleared':
      return withPolicy(view, policyTargetOf(event.data.target), null);
    default:
      return view;
  }
}
