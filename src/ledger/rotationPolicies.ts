import {
  emptyRotationPoliciesView,
  evolveRotationPolicies,
  policyTargetOf,
  type RotationPoliciesView,
} from '../../projections/rotationPolicies.js';
import {
  decideClearRotationPolicy,
  decideSetRotationPolicy,
  formatPolicyTarget,
  type RotationPolicy,
  type RotationPolicyTarget,
  type RotationPolicyTerms,
} from '../domain/decideRotationPolicy.js';
import { KeyledgerError } from '../domain/errors.js';
import { parseEventOf, ROTATION_POLICY_EVENT_TYPES } from '../domain/events.js';
import type { KeyScope } from '../domain/identities.js';
import { type EffectivePolicy, effectivePolicy } from '../domain/rotationDue.js';
import { decideAndAppend, expectedAfter, type Journal, type Loaded } from '../journal/decideAndAppend.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { OperationOptions } from './operationOptions.js';

interface PoliciesDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
}

/** A policy as results show it: whose, its terms, who set it when. */
export interface PolicyInfo {
  /** A scope (`<custodian>:<namespace>`), `@default` or `@stk`. */
  readonly target: string;
  readonly periodMs: number;
  readonly disableInactiveAfterMs: number | null;
  readonly setAt: string;
  readonly setBy: string;
}

export interface PolicyChange {
  readonly target: string;
  /** The policy now in force for the target itself (null: cleared). */
  readonly policy: PolicyInfo | null;
  /** False when the same terms were set again (nothing written). */
  readonly changed: boolean;
  readonly position: bigint | null;
}

/** One policy event, for the policy history (docs/audit.md). */
export interface PolicyHistoryEntry {
  readonly position: string;
  readonly type: 'RotationPolicySet' | 'RotationPolicyCleared';
  readonly target: string;
  readonly occurredAt: string;
  readonly actor: string;
  readonly reason: string | null;
  readonly from: { readonly periodMs: number; readonly disableInactiveAfterMs: number | null } | null;
  readonly to: { readonly periodMs: number; readonly disableInactiveAfterMs: number | null } | null;
}

function infoOf(target: RotationPolicyTarget, policy: RotationPolicy): PolicyInfo {
  return {
    target: formatPolicyTarget(target),
    periodMs: policy.periodMs,
    disableInactiveAfterMs: policy.disableInactiveAfterMs,
    setAt: policy.setAt,
    setBy: policy.setBy,
  };
}

function termsOf(policy: RotationPolicy | null) {
  return policy === null
    ? null
    : { periodMs: policy.periodMs, disableInactiveAfterMs: policy.disableInactiveAfterMs };
}

/**
 * Rotation policies (docs/cli.md, "Rotation policies"): set and cleared as events on the policy
 * stream, through decideAndAppend, with the rules in src/domain/decideRotationPolicy.ts. The
 * stream is short (people change policies, not programs), so every read folds it afresh
 * (projections/rotationPolicies.ts) and sees what any process wrote: no view to lag behind.
 */
export class RotationPolicies {
  readonly #d: PoliciesDeps;

  constructor(deps: PoliciesDeps) {
    this.#d = deps;
  }

  /** Sets or changes the target's policy; the same terms again write nothing. ERR_INVALID_ARGUMENT. */
  async set(
    target: RotationPolicyTarget,
    terms: RotationPolicyTerms,
    options?: OperationOptions,
  ): Promise<PolicyChange> {
    this.#requireInitialised();
    const written = await decideAndAppend(this.#d.journal, {
      stream: this.#d.names.policies,
      context: this.#d.context(options),
      load: () => this.#load(),
      decide: (state) => decideSetRotationPolicy(state, target, terms),
    });
    const policy = (await this.view()).policyOf(target);
    return {
      target: formatPolicyTarget(target),
      policy: policy === null ? null : infoOf(target, policy),
      changed: written.position !== null,
      position: written.position,
    };
  }

  /** Clears the target's own policy; ERR_ROTATION_POLICY_NOT_FOUND when it has none. */
  async clear(target: RotationPolicyTarget, options?: OperationOptions): Promise<PolicyChange> {
    this.#requireInitialised();
    const written = await decideAndAppend(this.#d.journal, {
      stream: this.#d.names.policies,
      context: this.#d.context(options),
      load: () => this.#load(),
      decide: (state) => decideClearRotationPolicy(state, target),
    });
    return { target: formatPolicyTarget(target), policy: null, changed: true, position: written.position };
  }

  /** Every policy in force, folded from the stream now. */
  async view(): Promise<RotationPoliciesView> {
    return (await this.#load()).state;
  }

  /** Every policy in force as plain data: the default, the system key's, then the scopes'. */
  async list(): Promise<PolicyInfo[]> {
    const view = await this.view();
    const out: PolicyInfo[] = [];
    if (view.default !== null) out.push(infoOf({ kind: 'default' }, view.default));
    if (view.system !== null) out.push(infoOf({ kind: 'system' }, view.system));
    for (const { target, policy } of view.scopes.values()) out.push(infoOf(target, policy));
    return out;
  }

  /** The policy a scope follows: its own, else the default; null: none. */
  static effective(view: RotationPoliciesView, scope: KeyScope): EffectivePolicy | null {
    return effectivePolicy(view.policyOf({ kind: 'scope', scope }), view.default);
  }

  /** Every policy change, in order, each with what it changed from and to; `target` narrows it to one. */
  async history(target?: RotationPolicyTarget): Promise<PolicyHistoryEntry[]> {
    const wanted = target === undefined ? null : formatPolicyTarget(target);
    let state = emptyRotationPoliciesView();
    const entries: PolicyHistoryEntry[] = [];
    for (const recorded of await this.#d.journal.store.readStream(this.#d.names.policies)) {
      const event = parseEventOf(recorded, ROTATION_POLICY_EVENT_TYPES);
      const eventTarget = policyTargetOf(event.data.target);
      const next = evolveRotationPolicies(state, event);
      const name = formatPolicyTarget(eventTarget);
      if (wanted === null || wanted === name) {
        entries.push({
          position: event.position.toString(),
          type: event.type,
          target: name,
          occurredAt: event.meta.occurredAt,
          actor: event.meta.actor,
          reason: event.meta.reason,
          from: termsOf(state.policyOf(eventTarget)),
          to: termsOf(next.policyOf(eventTarget)),
        });
      }
      state = next;
    }
    return entries;
  }

  async #load(): Promise<Loaded<RotationPoliciesView>> {
    let state = emptyRotationPoliciesView();
    const recorded = await this.#d.journal.store.readStream(this.#d.names.policies);
    for (const event of recorded) {
      state = evolveRotationPolicies(state, parseEventOf(event, ROTATION_POLICY_EVENT_TYPES));
    }
    return { state, expected: expectedAfter(recorded.at(-1)?.revision ?? null) };
  }

  /** As for every other write: a ledger without a system key (run init) takes none. */
  #requireInitialised(): void {
    if (this.#d.projector.latestSystemKey() === null) {
      throw new KeyledgerError(
        'ERR_LEDGER_NOT_INITIALISED',
        'the ledger has no system key yet; run init',
        {},
      );
    }
  }
}
