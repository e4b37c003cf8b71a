import { planRefresh } from '../domain/decideRefresh.js';
import {
  assertCanRotate,
  assertCanSetKey,
  decideClearCache,
  decideEjectCacheEntry,
  enableIsNoop,
  newKeysIn,
  type ScopeCommand,
} from '../domain/decideScope.js';
import { KeyledgerError } from '../domain/errors.js';
import type { DomainEvent } from '../domain/events.js';
import {
  formatScope,
  type KeyScope,
  keyScope,
  type MetadataHash,
  parseMetadataHash,
} from '../domain/identities.js';
import { metadataHashOf } from '../domain/keyDigests.js';
import { assertUsableForActivation } from '../domain/keyFacts.js';
import type { MarkerState } from '../domain/keyState.js';
import { findKeyByHash, type ScopeState } from '../domain/scopeState.js';
import { appendEvents, type Journal } from '../journal/decideAndAppend.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import { type BulkEnableOptions, enableMany } from './bulkEnable.js';
import { type KeyInfo, type ScopeStatus, toKeyInfo } from './keyInfo.js';
import { KeyMaterialStreams, type NewKeyMaterial } from './keyMaterialStreams.js';
import { askAboutKeys, refreshIncomplete } from './keyRefresh.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { KeyResult, OperationOptions, WriteResult } from './operationOptions.js';
import { type CheckedAnswer, checkProviderAnswer } from './providerAnswers.js';
import { notASystemKey, withKeys } from './providerKeyBytes.js';
import type { ScopeWriter } from './scopeWriter.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';
import type { SystemKeyChange, SystemKeyLifecycle } from './systemKeyLifecycle.js';

export interface EnableResult {
  readonly marker: MarkerState | null;
  readonly key: KeyInfo | null;
  /** Global position written; null when nothing was (already enabled). */
  readonly position: bigint | null;
}

export interface RefreshResult extends WriteResult {
  readonly skipped: boolean;
  readonly keys: readonly KeyInfo[];
}

interface AdminDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly provider: ManagedKeyProvider;
  readonly projector: LedgerProjector;
  readonly systemKeys: SystemKeyHandles;
  readonly lifecycle: SystemKeyLifecycle;
  readonly scopes: ScopeWriter;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
}

/**
 * KeymetaAdmin: every key-management operation of SEMANTICS.md. Each one validates its input,
 * loads the scope by folding its stream, asks the provider when the rules need it, decides the
 * events with the pure decider and appends them with the stream revision it decided on. A lost
 * race re-reads and re-decides, so two admins racing on a scope can never leave two ACTIVE keys.
 * A call that wrote returns once this process's view includes its events. Refresh's questions to
 * the provider are in keyRefresh.ts, the handling of the key bytes answers carry in
 * providerKeyBytes.ts.
 */
export class KeymetaAdmin {
  readonly #d: AdminDeps;
  readonly #materials: KeyMaterialStreams;

  constructor(deps: AdminDeps) {
    this.#d = deps;
    this.#materials = new KeyMaterialStreams(deps);
  }

  async enableKeyManagement(
    custodian: string,
    namespace?: string,
    options?: OperationOptions,
  ): Promise<EnableResult> {
    const { scope, context, stk, state } = await this.#d.scopes.begin(custodian, namespace, options);
    if (enableIsNoop(state)) return this.#enableResult(scope, null);
    const answer = this.#notASystemKey(checkProviderAnswer(await this.#d.provider.getManagedKey(scope)));
    return withKeys(answer, async (keys) => {
      const command: ScopeCommand = {
        type: 'EnableKeyManagement',
        answer: answer?.facts ?? null,
        stkIdentity: stk.identity,
      };
      const position = await this.#commit(scope, state, context, () => command, { stk, keys });
      return this.#enableResult(scope, position);
    });
  }

  /**
   * enableKeyManagement for many scopes (bulk onboarding), `concurrency` at a time (default 64);
   * results in the order given. See bulkEnable.ts for failures and why this is faster.
   */
  enableKeyManagementMany(
    scopes: readonly { readonly custodian: string; readonly namespace?: string }[],
    options?: BulkEnableOptions,
  ): Promise<EnableResult[]> {
    const { concurrency, ...each } = options ?? {};
    return enableMany(scopes, (s) => this.enableKeyManagement(s.custodian, s.namespace, each), concurrency);
  }

  /** All keys of a scope (markers excluded); never key bytes. */
  async getManagedKeys(custodian: string, namespace?: string): Promise<KeyInfo[]> {
    return [...(await this.getScopeStatus(custodian, namespace)).keys];
  }

  async getScopeStatus(custodian: string, namespace?: string): Promise<ScopeStatus> {
    const scope = keyScope(custodian, namespace);
    await this.#d.projector.ensureScope(scope);
    const state = this.#d.scopes.view(scope);
    return { ...scope, marker: state.marker, keys: [...state.keys.values()].map((k) => toKeyInfo(k, scope)) };
  }

  /** This process's view of a scope, as the decider folds it (rotation status reads it). */
  scopeState(scope: KeyScope): ScopeState {
    return this.#d.scopes.view(scope);
  }

  /** Every scope the ledger knows, with its marker and keys. */
  listScopes(): ScopeStatus[] {
    return [...this.#d.projector.wholeKeymeta('listScopes').scopes.values()].map((s) => ({
      ...s.scope,
      marker: s.marker,
      keys: [...s.keys.values()].map((k) => toKeyInfo(k, s.scope)),
    }));
  }

  /** HBase's rotateSTK: records the provider's current system key if it is new (SystemKeyLifecycle). */
  rotateSTK(options?: OperationOptions): Promise<SystemKeyChange> {
    return this.#d.lifecycle.rotate(this.#d.context(options));
  }

  async disableKeyManagement(
    custodian: string,
    namespace?: string,
    options?: OperationOptions,
  ): Promise<WriteResult> {
    const { scope, context, state } = await this.#d.scopes.begin(custodian, namespace, options);
    const position = await this.#commit(scope, state, context, () => ({ type: 'DisableKeyManagement' }));
    return { position };
  }

  async disableManagedKey(
    custodian: string,
    namespace: string | undefined,
    metadataHash: string,
    options?: OperationOptions,
    /** Checked against the scope on every try: false writes nothing (rotate-due-keys: still due). */
    onlyIf?: (state: ScopeState, now: Date) => boolean,
  ): Promise<KeyResult> {
    return this.#changeKey(custodian, namespace, metadataHash, options, 'DisableManagedKey', onlyIf);
  }

  /** keyledger's addition: DISABLED → INACTIVE (decrypts again; never straight back to ACTIVE). */
  async enableManagedKey(
    custodian: string,
    namespace: string | undefined,
    metadataHash: string,
    options?: OperationOptions,
  ): Promise<KeyResult> {
    return this.#changeKey(custodian, namespace, metadataHash, options, 'EnableManagedKey');
  }

  /**
   * The new ACTIVE key, or null when the provider had no new ACTIVE key (nothing recorded). With
   * `onlyIf`, nothing is recorded either unless it holds for the scope as each try decides on it
   * (rotate-due-keys: the rotation is still due, no other process made it meanwhile).
   */
  async rotateManagedKey(
    custodian: string,
    namespace?: string,
    options?: OperationOptions,
    onlyIf?: (state: ScopeState, now: Date) => boolean,
  ): Promise<KeyResult | null> {
    const { scope, context, stk, state } = await this.#d.scopes.begin(custodian, namespace, options);
    assertCanRotate(state);
    if (onlyIf !== undefined && !onlyIf(state, this.#d.journal.now())) return null;
    const answer = this.#notASystemKey(checkProviderAnswer(await this.#d.provider.getManagedKey(scope)));
    return withKeys(answer, async (keys) => {
      const position = await this.#commit(
        scope,
        state,
        context,
        () => ({ type: 'RotateManagedKey', answer: answer?.facts ?? null, stkIdentity: stk.identity }),
        { stk, keys },
        onlyIf,
      );
      return position === null ? null : { position, key: this.#activeInfo(scope) };
    });
  }

  /**
   * Asks the provider about every ACTIVE and INACTIVE key of the scope and records what it says.
   * A failing key does not stop the others; the first failure is thrown at the end, after the
   * answers that did come were recorded.
   */
  async refreshManagedKeys(
    custodian: string,
    namespace?: string,
    options?: OperationOptions,
  ): Promise<RefreshResult> {
    const { scope, context, state } = await this.#d.scopes.begin(custodian, namespace, options);
    const plan = planRefresh(state);
    if (plan.kind === 'skip') return { skipped: true, position: null, keys: this.#infos(scope) };
    if (plan.kind === 'retry-enable') {
      const result = await this.enableKeyManagement(custodian, namespace, {
        ...options,
        correlationId: context.correlationId,
      });
      return { skipped: false, position: result.position, keys: this.#infos(scope) };
    }
    const { answers, failures } = await askAboutKeys(this.#d.provider, this.#materials, state, plan.keys);
    const position =
      answers.size === 0
        ? null
        : await this.#commit(scope, state, context, () => ({ type: 'RefreshManagedKeys', answers }));
    if (failures[0] !== undefined) throw refreshIncomplete(scope, failures, plan.keys.length, position);
    return { skipped: false, position, keys: this.#infos(scope) };
  }

  /** Makes the key named by `metadata` the scope's ACTIVE key; the previous ACTIVE key → INACTIVE. */
  async setManagedKey(
    custodian: string,
    namespace: string | undefined,
    metadata: string,
    options?: OperationOptions,
  ): Promise<KeyResult> {
    if (metadata.length === 0 || metadata.length > 4096) {
      throw new KeyledgerError('ERR_INVALID_METADATA', 'metadata must be 1..4096 characters', {});
    }
    const { scope, context, stk, state } = await this.#d.scopes.begin(custodian, namespace, options);
    assertCanSetKey(state);
    const known = findKeyByHash(state, metadataHashOf(metadata));
    // The ledger's own rules refuse these without asking the provider (a DESTROYED key has no
    // material left to hand it).
    if (known !== null && (known.state === 'DESTROYED' || known.destruction !== null)) {
      assertUsableForActivation(state, known);
    }
    const material = known === null ? null : await this.#materials.latest(known);
    const answer = this.#notASystemKey(
      checkProviderAnswer(await this.#d.provider.unwrapKey(metadata, material)),
    );
    if (answer === null) {
      throw new KeyledgerError('ERR_PROVIDER_NO_KEY', `provider has no key for that metadata`, {
        scope: formatScope(scope),
      });
    }
    return withKeys(answer, async (keys) => {
      const position = await this.#commit(
        scope,
        state,
        context,
        () => ({ type: 'SetManagedKey', answer: answer.facts, stkIdentity: stk.identity }),
        { stk, keys },
      );
      return { position, key: this.#activeInfo(scope) };
    });
  }

  /** Records that every process should evict a scope's cached keys (or one key's). */
  async ejectManagedKeyDataCacheEntry(
    custodian: string,
    namespace?: string,
    metadataHash?: string,
    options?: OperationOptions,
  ): Promise<WriteResult> {
    const hash = metadataHash === undefined ? null : parseMetadataHash(metadataHash);
    const { context, state } = await this.#d.scopes.begin(custodian, namespace, options);
    const event = decideEjectCacheEntry(state, hash);
    return { position: await this.#appendOperation(event, context) };
  }

  async clearManagedKeyDataCache(options?: OperationOptions): Promise<WriteResult> {
    const context = this.#d.context(options);
    await this.#d.systemKeys.current();
    return { position: await this.#appendOperation(decideClearCache(), context) };
  }

  async #changeKey(
    custodian: string,
    namespace: string | undefined,
    metadataHash: string,
    options: OperationOptions | undefined,
    type: 'DisableManagedKey' | 'EnableManagedKey',
    onlyIf?: (state: ScopeState, now: Date) => boolean,
  ): Promise<KeyResult> {
    const hash: MetadataHash = parseMetadataHash(metadataHash);
    const { scope, context, state } = await this.#d.scopes.begin(custodian, namespace, options);
    const position = await this.#commit(
      scope,
      state,
      context,
      () => ({ type, metadataHash: hash }),
      undefined,
      onlyIf,
    );
    const key = findKeyByHash(this.#d.scopes.view(scope), hash);
    if (key === null)
      throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no key ${hash} in ${formatScope(scope)}`, {
        scope: formatScope(scope),
        metadataHash: hash,
      });
    return { position, key: toKeyInfo(key, scope) };
  }

  /**
   * Decides and appends through the scope writer. New keys' wrapped material is written between
   * deciding and appending, before the lifecycle event that introduces them, so a reader that sees
   * a key can always find it; a write that then loses its race leaves only unreferenced material.
   */
  async #commit(
    scope: KeyScope,
    initial: ScopeState,
    context: OperationContext,
    command: (now: Date) => ScopeCommand,
    material?: NewKeyMaterial,
    onlyIf?: (state: ScopeState, now: Date) => boolean,
  ): Promise<bigint | null> {
    const written = await this.#d.scopes.commit(
      scope,
      initial,
      context,
      command,
      (events, state, now) => this.#materials.write(newKeysIn(state, events), scope, context, now, material),
      onlyIf,
    );
    return written.position;
  }

  async #appendOperation(event: DomainEvent, context: OperationContext): Promise<bigint> {
    const written = await appendEvents(this.#d.journal, {
      stream: this.#d.names.operations,
      context,
      events: [event],
    });
    return written.position as bigint;
  }

  /** A recorded system key offered as a data key is refused (providerKeyBytes.ts says why). */
  #notASystemKey(answer: CheckedAnswer | null): CheckedAnswer | null {
    return notASystemKey(answer, this.#d.projector.systemKeys.keys);
  }

  #infos(scope: KeyScope): KeyInfo[] {
    return [...this.#d.scopes.view(scope).keys.values()].map((k) => toKeyInfo(k, scope));
  }

  #activeInfo(scope: KeyScope): KeyInfo {
    const state = this.#d.scopes.view(scope);
    const key = state.activeKeyId === null ? undefined : state.keys.get(state.activeKeyId);
    if (key === undefined)
      throw new KeyledgerError('ERR_NO_ACTIVE_KEY', `no ACTIVE key in ${formatScope(scope)}`, {
        custodian: scope.custodian,
        namespace: scope.namespace,
      });
    return toKeyInfo(key, scope);
  }

  #enableResult(scope: KeyScope, position: bigint | null): EnableResult {
    const state = this.#d.scopes.view(scope);
    const key = state.activeKeyId === null ? undefined : state.keys.get(state.activeKeyId);
    return { marker: state.marker, key: key === undefined ? null : toKeyInfo(key, scope), position };
  }
}
