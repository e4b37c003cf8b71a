import { scopeOf } from '../../projections/keymeta.js';
import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import { decideScope, type ScopeCommand } from '../domain/decideScope.js';
import { parseEventOf, SCOPE_EVENT_TYPES, type ScopeEvent } from '../domain/events.js';
import { type KeyScope, keyScope } from '../domain/identities.js';
import { evolveScope, type ScopeState } from '../domain/scopeState.js';
import { decideAndAppend, expectedAfter, type Journal, type Written } from '../journal/decideAndAppend.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { OperationOptions } from './operationOptions.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';

export interface ScopeWriterDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
  readonly systemKeys: SystemKeyHandles;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
}

export interface ScopeOperation {
  readonly scope: KeyScope;
  readonly context: OperationContext;
  /** The current system key (the ledger is initialised). */
  readonly stk: SystemKeyHandle;
  readonly state: ScopeState;
}

/**
 * How the scope services (KeymetaAdmin, KeyDestruction) read and write a scope's stream: fold it,
 * decide with the pure decider (decideScope), append through the journal at the revision decided on.
 */
export class ScopeWriter {
  readonly #d: ScopeWriterDeps;

  constructor(deps: ScopeWriterDeps) {
    this.#d = deps;
  }

  /**
   * What every scope operation starts with, in this order: validate the scope (bad input fails
   * before anything else), require an initialised ledger (its current STK), load the scope.
   */
  async begin(
    custodian: string,
    namespace: string | undefined,
    options: OperationOptions | undefined,
  ): Promise<ScopeOperation> {
    const scope = keyScope(custodian, namespace);
    const context = this.#d.context(options);
    const stk = await this.#d.systemKeys.current();
    const state = await this.load(scope);
    return { scope, context, stk, state };
  }

  /**
   * The scope's state as decisions need it: this process's view of the scope, brought up to the
   * stream's latest revision by folding only the events the view has not applied yet (usually
   * none). The view folds with the same evolveScope, so this equals a fold of the whole stream,
   * without re-reading and re-parsing a long stream on every call.
   */
  async load(scope: KeyScope): Promise<ScopeState> {
    // A point ledger reads the scope into its view first (a no-op for the whole view).
    await this.#d.projector.ensureScope(scope);
    let state = this.view(scope);
    const fromRevision = state.revision === null ? 0n : state.revision + 1n;
    for (const recorded of await this.#d.journal.store.readStream(this.#d.names.scope(scope), {
      fromRevision,
    })) {
      const event = parseEventOf(recorded, SCOPE_EVENT_TYPES);
      state = evolveScope(state, event, event.meta.occurredAt, event.revision);
    }
    return state;
  }

  /** This process's view of the scope (what a call that wrote returns once it includes). */
  view(scope: KeyScope): ScopeState {
    return scopeOf(this.#d.projector.keymeta, scope);
  }

  /**
   * Decides a command against the scope's stream and appends what it decided, re-deciding on a
   * lost race: two admins racing on a scope can never leave two ACTIVE keys.
   */
  commit(
    scope: KeyScope,
    initial: ScopeState,
    context: OperationContext,
    /** Gets the time the events will carry (a scheduled destruction's due time counts from it). */
    command: (now: Date) => ScopeCommand | Promise<ScopeCommand>,
    beforeAppend?: (events: readonly ScopeEvent[], state: ScopeState, now: Date) => Promise<void>,
    /**
     * A condition checked on every try against the scope as folded, before deciding: false writes
     * nothing. A due rotation passes one, so a process that lost the race to another's rotation
     * finds the new key not due and stops there (no second rotation).
     */
    onlyIf?: (state: ScopeState, now: Date) => boolean,
  ): Promise<Written<ScopeState, ScopeEvent>> {
    const load = async (state: ScopeState) => ({ state, expected: expectedAfter(state.revision) });
    return decideAndAppend<ScopeState, ScopeEvent>(this.#d.journal, {
      stream: this.#d.names.scope(scope),
      context,
      initial: { state: initial, expected: expectedAfter(initial.revision) },
      load: async () => load(await this.load(scope)),
      decide: async (state, now) =>
        onlyIf !== undefined && !onlyIf(state, now) ? [] : decideScope(state, await command(now)),
      beforeAppend,
    });
  }
}
