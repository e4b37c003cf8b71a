import type { RotationPoliciesView } from '../../projections/rotationPolicies.js';
import type { RotationPolicy } from '../domain/decideRotationPolicy.js';
import { isKeyledgerError } from '../domain/errors.js';
import { formatScope, type KeyScope } from '../domain/identities.js';
import {
  type EffectivePolicy,
  isRotationDue,
  keyAgeMs,
  scopeRotationStatus,
  systemKeyRotationStatus,
} from '../domain/rotationDue.js';
import type { ScopeState } from '../domain/scopeState.js';
import type { Journal } from '../journal/decideAndAppend.js';
import { newCorrelationId, type OperationContext } from '../journal/eventFactory.js';
import type { KeymetaAdmin } from './keymetaAdmin.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { OperationOptions } from './operationOptions.js';
import { RotationPolicies } from './rotationPolicies.js';
import type { SystemKeyLifecycle } from './systemKeyLifecycle.js';

/** One thing a policy says is due now. Plain data. */
export type DueAction =
  | {
      readonly kind: 'rotate-key';
      /** `<custodian>:<namespace>`. */
      readonly scope: string;
      readonly custodian: string;
      readonly namespace: string;
      readonly policy: 'scope' | 'default';
      readonly activeSince: string;
      readonly dueAt: string;
    }
  | {
      readonly kind: 'disable-key';
      readonly scope: string;
      readonly custodian: string;
      readonly namespace: string;
      readonly policy: 'scope' | 'default';
      readonly keyId: string;
      readonly metadataHash: string;
      readonly inactiveSince: string;
      readonly dueAt: string;
    }
  | { readonly kind: 'rotate-stk'; readonly recordedAt: string; readonly dueAt: string };

/**
 * What became of it. `done`: rotated or disabled; `unchanged`: the provider had no new ACTIVE key
 * (the same key, or a FAILED answer: SEMANTICS.md records nothing then and the current key stays
 * valid), so it stays due and the next run asks again; `not-due`: another process did it first;
 * `failed`: an error (the code says which), the next run retries; `planned`: a dry run.
 */
export type DueOutcome = 'done' | 'unchanged' | 'not-due' | 'failed' | 'planned';

export type DueResult = DueAction & {
  readonly outcome: DueOutcome;
  readonly code: string | null;
  readonly message: string | null;
  /** Global position written (decimal string), or null. */
  readonly position: string | null;
};

export interface DueRun {
  readonly dryRun: boolean;
  /** The clock reading the plan was made at. */
  readonly checkedAt: string;
  readonly results: readonly DueResult[];
  readonly done: number;
  readonly failed: number;
  /** True when the run was stopped (signal) before every action ran; the rest are not listed. */
  readonly stopped: boolean;
}

export interface ScopeRotation {
  readonly checkedAt: string;
  /** The policy the scope follows, and whether it is its own or the default; null: none. */
  readonly policy: {
    readonly source: 'scope' | 'default';
    readonly periodMs: number;
    readonly disableInactiveAfterMs: number | null;
    readonly setAt: string;
    readonly setBy: string;
  } | null;
  readonly activeSince: string | null;
  readonly nextRotationDueAt: string | null;
  readonly rotationDue: boolean;
  /** Each key's age (since it entered the ledger) by key id, in milliseconds. */
  readonly keyAgesMs: Readonly<Record<string, number>>;
}

export interface DueRunOptions extends OperationOptions {
  /** List what is due, change nothing. */
  readonly dryRun?: boolean;
  /** Stops between actions; what ran stays done, the next run picks up the rest. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

interface DueDeps {
  readonly journal: Journal;
  readonly projector: LedgerProjector;
  readonly admin: KeymetaAdmin;
  readonly lifecycle: SystemKeyLifecycle;
  readonly policies: RotationPolicies;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
}

/** The reason recorded on what a policy makes happen, when the caller gives none. */
export const DUE_REASON = 'due under the rotation policy';

interface Planned {
  readonly action: DueAction;
  readonly policy: RotationPolicy;
  readonly scope: KeyScope | null;
}

/**
 * rotate-due-keys (docs/cli.md, "Rotation policies"): finds what the rotation policies say is due
 * (rotations, INACTIVE keys past their age, the system key) and does it, one action at a time.
 * Each action re-checks that it is still due against the stream it appends to, inside the write:
 * two processes running it at once make one rotation per due scope, and a re-run does nothing
 * new. A failing action is reported and the run goes on with the others.
 */
export class DueRotations {
  readonly #d: DueDeps;

  constructor(deps: DueDeps) {
    this.#d = deps;
  }

  /**
   * A scope's rotation as show-key-status shows it: the policy it follows (its own or the default),
   * when its ACTIVE key became ACTIVE, when the next rotation is due, and each key's age.
   */
  async scopeRotation(scope: KeyScope): Promise<ScopeRotation> {
    const now = this.#d.journal.now();
    const policy = RotationPolicies.effective(await this.#d.policies.view(), scope);
    const state = this.#d.admin.scopeState(scope);
    const status = scopeRotationStatus(state, policy, now);
    return {
      checkedAt: now.toISOString(),
      policy:
        policy === null
          ? null
          : {
              source: policy.source,
              periodMs: policy.periodMs,
              disableInactiveAfterMs: policy.disableInactiveAfterMs,
              setAt: policy.setAt,
              setBy: policy.setBy,
            },
      activeSince: status.activeSince,
      nextRotationDueAt: status.nextRotationDueAt,
      rotationDue: status.rotationDue,
      keyAgesMs: Object.fromEntries([...state.keys.values()].map((k) => [k.keyId, keyAgeMs(k, now)])),
    };
  }

  /** What is due at `now` (default: the ledger's clock), changing nothing. */
  async plan(now: Date = this.#d.journal.now()): Promise<DueAction[]> {
    return (await this.#plan(now)).map((p) => p.action);
  }

  async run(options: DueRunOptions = {}): Promise<DueRun> {
    const now = this.#d.journal.now();
    const planned = await this.#plan(now);
    const checkedAt = now.toISOString();
    if (options.dryRun === true) {
      const results = planned.map((p) => ({ ...p.action, ...result('planned') }));
      return { dryRun: true, checkedAt, results, done: 0, failed: 0, stopped: false };
    }
    const writeOptions: OperationOptions = {
      actor: options.actor,
      reason: options.reason ?? DUE_REASON,
      // One run's events are tied together.
      correlationId: options.correlationId ?? newCorrelationId(),
    };
    const results: DueResult[] = [];
    let stopped = false;
    for (const p of planned) {
      if (options.signal?.aborted === true) {
        stopped = true;
        break;
      }
      results.push({ ...p.action, ...(await this.#attempt(p, writeOptions)) });
      options.onProgress?.(results.length, planned.length);
    }
    return {
      dryRun: false,
      checkedAt,
      results,
      done: results.filter((r) => r.outcome === 'done').length,
      failed: results.filter((r) => r.outcome === 'failed').length,
      stopped,
    };
  }

  async #attempt(p: Planned, options: OperationOptions): Promise<ReturnType<typeof result>> {
    // Set when the re-check inside the write finds the action no longer due.
    let overtaken = false;
    const still =
      <S>(due: (state: S, now: Date) => boolean) =>
      (state: S, now: Date) => {
        const yes = due(state, now);
        if (!yes) overtaken = true;
        return yes;
      };
    try {
      const { action, policy, scope } = p;
      switch (action.kind) {
        case 'rotate-key': {
          if (scope === null) throw new TypeError('a scope action without its scope');
          const r = await this.#d.admin.rotateManagedKey(
            scope.custodian,
            scope.namespace,
            options,
            still((state: ScopeState, now) => isRotationDue(state, policy, now)),
          );
          if (r !== null) return result('done', r.position);
          return overtaken ? result('not-due') : result('unchanged', null, null, NO_NEW_KEY);
        }
        case 'disable-key': {
          if (scope === null) throw new TypeError('a scope action without its scope');
          const r = await this.#d.admin.disableManagedKey(
            scope.custodian,
            scope.namespace,
            action.metadataHash,
            options,
            still((state: ScopeState, now) =>
              scopeRotationStatus(state, policy, now).inactiveKeysDue.some((k) => k.keyId === action.keyId),
            ),
          );
          return overtaken || r.position === null ? result('not-due') : result('done', r.position);
        }
        case 'rotate-stk': {
          const r = await this.#d.lifecycle.rotate(
            this.#d.context(options),
            still((latest, now) => systemKeyRotationStatus(latest, policy, now).rotationDue),
          );
          if (r.changed) return result('done', r.position);
          return overtaken ? result('not-due') : result('unchanged', null, null, NO_NEW_STK);
        }
        default: {
          const unreachable: never = action;
          return unreachable;
        }
      }
    } catch (error) {
      const code = isKeyledgerError(error) ? error.code : 'ERR_INTERNAL';
      return result('failed', null, code, (error as Error).message);
    }
  }

  async #plan(now: Date): Promise<Planned[]> {
    const policies = await this.#d.policies.view();
    const planned: Planned[] = [];
    if (policies.system !== null) {
      const status = systemKeyRotationStatus(this.#d.projector.latestSystemKey(), policies.system, now);
      if (status.rotationDue && status.recordedAt !== null && status.nextRotationDueAt !== null) {
        planned.push({
          action: { kind: 'rotate-stk', recordedAt: status.recordedAt, dueAt: status.nextRotationDueAt },
          policy: policies.system,
          scope: null,
        });
      }
    }
    for (const state of this.#scopesUnderPolicy(policies)) {
      const policy = RotationPolicies.effective(policies, state.scope);
      if (policy === null) continue;
      planned.push(...scopeActions(state, policy, now));
    }
    return planned;
  }

  /** Every scope a policy applies to: all of them under a default, else those with their own. */
  #scopesUnderPolicy(policies: RotationPoliciesView): ScopeState[] {
    const scopes = this.#d.projector.keymeta.scopes;
    if (policies.default !== null) return [...scopes.values()];
    return [...policies.scopes.keys()].flatMap((key) => {
      const state = scopes.get(key);
      return state === undefined ? [] : [state];
    });
  }
}

const NO_NEW_KEY =
  'the provider had no new ACTIVE key (the same key, or a FAILED answer): nothing recorded, the current key stays valid; the next run asks again';
const NO_NEW_STK = 'the provider’s current system key is the recorded one: nothing recorded';

function scopeActions(state: ScopeState, policy: EffectivePolicy, now: Date): Planned[] {
  const status = scopeRotationStatus(state, policy, now);
  const where = {
    scope: formatScope(state.scope),
    custodian: state.scope.custodian,
    namespace: state.scope.namespace,
    policy: policy.source,
  };
  const out: Planned[] = [];
  // Disabling old keys first: a rotation in the same run makes the current key INACTIVE, and its
  // age counts from then, so it is never disabled in the run that retired it.
  for (const key of status.inactiveKeysDue) {
    out.push({
      action: {
        kind: 'disable-key',
        ...where,
        keyId: key.keyId,
        metadataHash: key.metadataHash,
        inactiveSince: key.inactiveSince,
        dueAt: key.disableDueAt,
      },
      policy,
      scope: state.scope,
    });
  }
  if (status.rotationDue && status.activeSince !== null && status.nextRotationDueAt !== null) {
    out.push({
      action: {
        kind: 'rotate-key',
        ...where,
        activeSince: status.activeSince,
        dueAt: status.nextRotationDueAt,
      },
      policy,
      scope: state.scope,
    });
  }
  return out;
}

function result(
  outcome: DueOutcome,
  position: bigint | null = null,
  code: string | null = null,
  message: string | null = null,
) {
  return { outcome, code, message, position: position === null ? null : position.toString() };
}
