import { scopeOf } from '../../projections/keymeta.js';
import type { SecretBytes } from '../crypto/secretBytes.js';
import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import {
  assertGracePeriod,
  dueDestructions,
  type MaterialCopy,
  type MaterialReceipt,
  materialHashOf,
} from '../domain/decideDestroy.js';
import {
  assertCanRotate,
  assertCanSetKey,
  assertUsableForActivation,
  checkRefreshAnswer,
  decideClearCache,
  decideEjectCacheEntry,
  decideScope,
  enableIsNoop,
  type KeyFacts,
  newKeysIn,
  planRefresh,
  type ScopeCommand,
} from '../domain/decideScope.js';
import { isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import {
  type DomainEvent,
  type EventOf,
  parseEventOf,
  parseLedgerEvent,
  SCOPE_EVENT_TYPES,
} from '../domain/events.js';
import {
  type Custodian,
  formatScope,
  type KeyId,
  type KeyScope,
  keyScope,
  type MetadataHash,
  type Namespace,
  parseMetadataHash,
} from '../domain/identities.js';
import { metadataHashOf } from '../domain/keyIdentity.js';
import type { MarkerState } from '../domain/keyState.js';
import { evolveScope, findKeyByHash, type ManagedKey, type ScopeState } from '../domain/scopeState.js';
import type { ManagedKeyProvider, WrappedKeyMaterial } from '../providers/managedKeyProvider.js';
import type { EventStore, ExpectedRevision } from '../store/eventStore.js';
import { deterministicEventId, type OperationContext, toStoredEvents } from './eventFactory.js';
import { type KeyInfo, type ScopeStatus, toKeyInfo } from './keyInfo.js';
import type { LedgerProjector } from './ledgerProjector.js';
import { type CheckedAnswer, checkProviderAnswer } from './providerAnswers.js';
import { retryOnConflict } from './retryOnConflict.js';
import type { StreamNames } from './streamNames.js';
import type { SystemKeyChange, SystemKeyManager } from './systemKeyManager.js';

/** Who is acting and why; recorded on every event an operation writes. */
export interface OperationOptions {
  readonly actor?: string;
  readonly reason?: string;
  /** Ties the events of one request together (a new one is made if absent). */
  readonly correlationId?: string;
}

export interface EnableResult {
  readonly marker: MarkerState | null;
  readonly key: KeyInfo | null;
  /** Global position written; null when nothing was (already enabled). */
  readonly position: bigint | null;
}

export interface WriteResult {
  readonly position: bigint | null;
}

export interface KeyResult extends WriteResult {
  readonly key: KeyInfo;
}

export interface ScheduleDestructionOptions extends OperationOptions {
  /**
   * How long until the destruction falls due, in milliseconds (0: due at once, when
   * destroyDueKeys next runs). Default: the ledger's `destroyGracePeriodMs` (7 days).
   */
  readonly graceMs?: number;
}

/** What a destruction deleted, as its ManagedKeyDestroyed event records it (docs/audit.md). */
export interface DestructionReceipt {
  readonly custodian: Custodian;
  readonly namespace: Namespace;
  readonly keyId: KeyId;
  readonly metadataHash: string;
  readonly previousState: 'INACTIVE' | 'DISABLED';
  readonly materialStream: string;
  readonly materialEvents: number;
  /** Hex SHA-256 over the deleted wrapped copies (materialHashOf); never of plaintext. */
  readonly materialHash: string;
  readonly scheduledAt: string;
  readonly dueAt: string;
  readonly destroyedAt: string;
  readonly actor: string;
  readonly reason: string | null;
  /** Global position of the ManagedKeyDestroyed event. */
  readonly position: bigint;
}

export interface DestroyDueResult {
  /** The destructions this run performed, in scope and key order. */
  readonly destroyed: readonly DestructionReceipt[];
  /**
   * DESTROYED keys whose material stream still held events (a run that stopped between the event
   * and the deletion, or a rewrap that raced it), deleted by this run.
   */
  readonly leftoversDeleted: readonly KeyId[];
}

export interface RefreshResult extends WriteResult {
  readonly skipped: boolean;
  readonly keys: readonly KeyInfo[];
}

interface AdminDeps {
  readonly store: EventStore;
  readonly names: StreamNames;
  readonly provider: ManagedKeyProvider;
  readonly projector: LedgerProjector;
  readonly systemKeys: SystemKeyManager;
  readonly now: () => Date;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
  /** Default grace period of a scheduled destruction, in milliseconds (validated by the ledger). */
  readonly destroyGraceMs: number;
  /**
   * Checkpoints the ledger: run after a destruction, since verify excuses a deleted material
   * stream only by a receipt a MACed checkpoint covers (docs/audit.md).
   */
  readonly checkpoint: (context: OperationContext) => Promise<unknown>;
}

/**
 * KeymetaAdmin: every key-management operation of SEMANTICS.md. Each one validates its input,
 * loads the scope by folding its stream, asks the provider when the rules need it, decides the
 * events with the pure decider and appends them with the stream revision it decided on. A lost
 * race re-reads and re-decides, so two admins racing on a scope can never leave two ACTIVE keys.
 * A call that wrote returns once this process's view includes its events.
 */
export class KeymetaAdmin {
  readonly #d: AdminDeps;

  constructor(deps: AdminDeps) {
    this.#d = deps;
  }

  async enableKeyManagement(
    custodian: string,
    namespace?: string,
    options?: OperationOptions,
  ): Promise<EnableResult> {
    const { scope, context, stk, state } = await this.#begin(custodian, namespace, options);
    if (enableIsNoop(state)) return this.#enableResult(scope, null);
    const answer = this.#notASystemKey(checkProviderAnswer(await this.#d.provider.getManagedKey(scope)));
    return this.#withKeys(answer, async (keys) => {
      const command: ScopeCommand = {
        type: 'EnableKeyManagement',
        answer: answer?.facts ?? null,
        stkIdentity: stk.identity,
      };
      const position = await this.#commit(scope, state, context, () => command, stk, keys);
      return this.#enableResult(scope, position);
    });
  }

  /** All keys of a scope (markers excluded); never key bytes. */
  async getManagedKeys(custodian: string, namespace?: string): Promise<KeyInfo[]> {
    return [...(await this.getScopeStatus(custodian, namespace)).keys];
  }

  async getScopeStatus(custodian: string, namespace?: string): Promise<ScopeStatus> {
    const scope = keyScope(custodian, namespace);
    const state = this.#viewOf(scope);
    return { ...scope, marker: state.marker, keys: [...state.keys.values()].map((k) => toKeyInfo(k, scope)) };
  }

  /** Every scope the ledger knows, with its marker and keys. */
  listScopes(): ScopeStatus[] {
    return [...this.#d.projector.keymeta.scopes.values()].map((s) => ({
      ...s.scope,
      marker: s.marker,
      keys: [...s.keys.values()].map((k) => toKeyInfo(k, s.scope)),
    }));
  }

  rotateSTK(options?: OperationOptions): Promise<SystemKeyChange> {
    return this.#d.systemKeys.rotate(this.#d.context(options));
  }

  async disableKeyManagement(
    custodian: string,
    namespace?: string,
    options?: OperationOptions,
  ): Promise<WriteResult> {
    const { scope, context, state } = await this.#begin(custodian, namespace, options);
    const position = await this.#commit(scope, state, context, () => ({ type: 'DisableKeyManagement' }));
    return { position };
  }

  async disableManagedKey(
    custodian: string,
    namespace: string | undefined,
    metadataHash: string,
    options?: OperationOptions,
  ): Promise<KeyResult> {
    return this.#changeKey(custodian, namespace, metadataHash, options, 'DisableManagedKey');
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

  /** The new ACTIVE key, or null when the provider had no new ACTIVE key (nothing recorded). */
  async rotateManagedKey(
    custodian: string,
    namespace?: string,
    options?: OperationOptions,
  ): Promise<KeyResult | null> {
    const { scope, context, stk, state } = await this.#begin(custodian, namespace, options);
    assertCanRotate(state);
    const answer = this.#notASystemKey(checkProviderAnswer(await this.#d.provider.getManagedKey(scope)));
    return this.#withKeys(answer, async (keys) => {
      const position = await this.#commit(
        scope,
        state,
        context,
        () => ({ type: 'RotateManagedKey', answer: answer?.facts ?? null, stkIdentity: stk.identity }),
        stk,
        keys,
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
    const { scope, context, state } = await this.#begin(custodian, namespace, options);
    const plan = planRefresh(state);
    if (plan.kind === 'skip') return { skipped: true, position: null, keys: this.#infos(scope) };
    if (plan.kind === 'retry-enable') {
      const result = await this.enableKeyManagement(custodian, namespace, {
        ...options,
        correlationId: context.correlationId,
      });
      return { skipped: false, position: result.position, keys: this.#infos(scope) };
    }
    const answers = new Map<KeyId, KeyFacts>();
    const failures: unknown[] = [];
    for (const key of plan.keys) {
      try {
        answers.set(key.keyId, await this.#askAbout(state, key));
      } catch (error) {
        failures.push(error);
      }
    }
    const position =
      answers.size === 0
        ? null
        : await this.#commit(scope, state, context, () => ({ type: 'RefreshManagedKeys', answers }));
    const [first] = failures;
    if (first !== undefined) {
      // Its own code, not the first failure's: the answers that did come were recorded, so this is
      // never "bad input, nothing written" whatever went wrong with one key.
      throw new KeyledgerError(
        'ERR_REFRESH_INCOMPLETE',
        `refresh of ${formatScope(scope)}: ${failures.length} of ${plan.keys.length} keys failed; first: ${(first as Error).message}`,
        {
          scope: formatScope(scope),
          failedKeys: failures.length,
          firstCode: isKeyledgerError(first) ? first.code : 'ERR_PROVIDER_FAILED',
          position: position?.toString() ?? null,
        },
        { cause: first },
      );
    }
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
    const { scope, context, stk, state } = await this.#begin(custodian, namespace, options);
    assertCanSetKey(state);
    const known = findKeyByHash(state, metadataHashOf(metadata));
    // The ledger's own rules refuse these without asking the provider (a DESTROYED key has no
    // material left to hand it).
    if (known !== null && (known.state === 'DESTROYED' || known.destruction !== null)) {
      assertUsableForActivation(state, known);
    }
    const material = known === null ? null : await this.#material(known);
    const answer = this.#notASystemKey(
      checkProviderAnswer(await this.#d.provider.unwrapKey(metadata, material)),
    );
    if (answer === null) {
      throw new KeyledgerError('ERR_PROVIDER_NO_KEY', `provider has no key for that metadata`, {
        scope: formatScope(scope),
      });
    }
    return this.#withKeys(answer, async (keys) => {
      const position = await this.#commit(
        scope,
        state,
        context,
        () => ({ type: 'SetManagedKey', answer: answer.facts, stkIdentity: stk.identity }),
        stk,
        keys,
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
    const { context, state } = await this.#begin(custodian, namespace, options);
    const event = decideEjectCacheEntry(state, hash);
    return { position: await this.#appendOperation(event, context) };
  }

  async clearManagedKeyDataCache(options?: OperationOptions): Promise<WriteResult> {
    const context = this.#d.context(options);
    await this.#d.systemKeys.current();
    return { position: await this.#appendOperation(decideClearCache(), context) };
  }

  /**
   * Schedules the destruction (crypto-shredding) of an INACTIVE or DISABLED key: once due, the next
   * destroyDueKeys deletes its wrapped material and records a receipt. The key's state is left
   * alone until then. Refused: the ACTIVE key (ERR_KEY_ACTIVE), a key already scheduled
   * (ERR_KEY_DESTRUCTION_SCHEDULED) or destroyed (ERR_KEY_DESTROYED), an unknown scope or key.
   */
  async scheduleKeyDestruction(
    custodian: string,
    namespace: string | undefined,
    metadataHash: string,
    options?: ScheduleDestructionOptions,
  ): Promise<KeyResult> {
    const hash: MetadataHash = parseMetadataHash(metadataHash);
    const graceMs = options?.graceMs ?? this.#d.destroyGraceMs;
    assertGracePeriod(graceMs);
    const { scope, context, state } = await this.#begin(custodian, namespace, options);
    const position = await this.#commit(scope, state, context, (now) => ({
      type: 'ScheduleKeyDestruction',
      metadataHash: hash,
      now,
      graceMs,
    }));
    return { position, key: this.#keyInfo(scope, hash) };
  }

  /** Cancels a scheduled destruction that has not run yet (ERR_KEY_DESTROYED once it has). */
  async cancelKeyDestruction(
    custodian: string,
    namespace: string | undefined,
    metadataHash: string,
    options?: OperationOptions,
  ): Promise<KeyResult> {
    const hash: MetadataHash = parseMetadataHash(metadataHash);
    const { scope, context, state } = await this.#begin(custodian, namespace, options);
    const position = await this.#commit(scope, state, context, () => ({
      type: 'CancelKeyDestruction',
      metadataHash: hash,
    }));
    return { position, key: this.#keyInfo(scope, hash) };
  }

  /**
   * Runs every destruction that is due by the ledger's clock: per key, the receipt is computed
   * from the material stream, ManagedKeyDestroyed is appended to the scope's stream, and only then
   * is the material stream deleted. A run that stops in between leaves a DESTROYED key (never
   * usable again) whose material the next run deletes; so every run also deletes what is left of
   * any DESTROYED key's material. Idempotent, and safe to run from several processes at once.
   */
  async destroyDueKeys(options?: OperationOptions): Promise<DestroyDueResult> {
    const context = this.#d.context(options);
    await this.#d.systemKeys.current();
    const now = this.#d.now();
    const due: { scope: KeyScope; keyId: KeyId }[] = [];
    const destroyedKeys: KeyId[] = [];
    for (const scopeState of this.#d.projector.keymeta.scopes.values()) {
      for (const key of dueDestructions(scopeState, now)) {
        due.push({ scope: scopeState.scope, keyId: key.keyId });
      }
      for (const key of scopeState.keys.values()) {
        if (key.state === 'DESTROYED') destroyedKeys.push(key.keyId);
      }
    }
    const destroyed: DestructionReceipt[] = [];
    for (const { scope, keyId } of due) {
      const receipt = await this.#destroyDue(scope, keyId, now, context);
      if (receipt !== null) destroyed.push(receipt);
    }
    const leftoversDeleted: KeyId[] = [];
    for (const keyId of destroyedKeys) {
      const stream = this.#d.names.material(keyId);
      if ((await this.#d.store.readStream(stream)).length === 0) continue;
      await this.#d.store.deleteStream(stream);
      leftoversDeleted.push(keyId);
    }
    // The stored snapshot may still hold the deleted material: replace it by one of this view,
    // which has applied the destructions and so no longer holds it.
    if (destroyed.length > 0 || leftoversDeleted.length > 0) await this.#d.projector.snapshotNow();
    if (destroyed.length > 0) {
      // The material is gone whatever happens here; a failed checkpoint shows in verify (the
      // receipt is uncovered) until the next one, automatic or `keyledger checkpoint`.
      await this.#d.checkpoint(context).catch(() => undefined);
    }
    return { destroyed, leftoversDeleted };
  }

  /** Every destruction receipt of a scope, oldest first (from its stream: they outlive the material). */
  async destructionReceipts(custodian: string, namespace?: string): Promise<DestructionReceipt[]> {
    const scope = keyScope(custodian, namespace);
    const receipts: DestructionReceipt[] = [];
    for (const recorded of await this.#d.store.readStream(this.#d.names.scope(scope))) {
      const event = parseEventOf(recorded, SCOPE_EVENT_TYPES);
      if (event.type !== 'ManagedKeyDestroyed') continue;
      receipts.push(
        receiptOf(event.data, { ...event.meta, destroyedAt: event.meta.occurredAt }, event.position),
      );
    }
    return receipts;
  }

  /**
   * One due destruction: event first, then the deletion, so that no reader ever sees a usable key
   * whose material is gone, and a crash in between leaves only material the next run deletes.
   * Null when it is no longer due (cancelled, or run by another process meanwhile).
   */
  async #destroyDue(
    scope: KeyScope,
    keyId: KeyId,
    now: Date,
    context: OperationContext,
  ): Promise<DestructionReceipt | null> {
    const stream = this.#d.names.scope(scope);
    const materialStream = this.#d.names.material(keyId);
    let state = await this.#loadScope(scope);
    const written = await retryOnConflict(
      async () => {
        const material = await this.#materialReceipt(materialStream);
        const events = decideScope(state, { type: 'DestroyDueKey', keyId, now, material });
        const [event] = events;
        if (event === undefined) return null;
        const expected: ExpectedRevision = state.revision ?? 'no_stream';
        const at = this.#d.now();
        const result = await this.#d.store.append(
          stream,
          toStoredEvents(events, context, stream, expected, at),
          expected,
        );
        await this.#d.projector.waitForPosition(result.position);
        return { event, at, position: result.position };
      },
      async () => {
        state = await this.#loadScope(scope);
      },
    );
    if (written === null || written.event.type !== 'ManagedKeyDestroyed') return null;
    await this.#d.store.deleteStream(materialStream);
    return receiptOf(
      written.event.data,
      { ...context, destroyedAt: written.at.toISOString() },
      written.position,
    );
  }

  /** The receipt of a material stream as it is now: its events' count and materialHashOf. */
  async #materialReceipt(materialStream: string): Promise<MaterialReceipt> {
    const copies: MaterialCopy[] = [];
    for (const recorded of await this.#d.store.readStream(materialStream)) {
      const event = parseEventOf(recorded, ['KeyMaterialWrapped']);
      const { keyId, stkIdentity, algorithm, wrapped } = event.data;
      copies.push({
        revision: event.revision,
        eventId: recorded.eventId,
        keyId,
        stkIdentity,
        algorithm,
        wrapped,
      });
    }
    return { materialStream, materialEvents: copies.length, materialHash: materialHashOf(copies) };
  }

  #keyInfo(scope: KeyScope, hash: MetadataHash): KeyInfo {
    const key = findKeyByHash(this.#viewOf(scope), hash);
    if (key === null)
      throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no key ${hash} in ${formatScope(scope)}`, {});
    return toKeyInfo(key, scope);
  }

  async #changeKey(
    custodian: string,
    namespace: string | undefined,
    metadataHash: string,
    options: OperationOptions | undefined,
    type: 'DisableManagedKey' | 'EnableManagedKey',
  ): Promise<KeyResult> {
    const hash: MetadataHash = parseMetadataHash(metadataHash);
    const { scope, context, state } = await this.#begin(custodian, namespace, options);
    const position = await this.#commit(scope, state, context, () => ({ type, metadataHash: hash }));
    const key = findKeyByHash(this.#viewOf(scope), hash);
    if (key === null)
      throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no key ${hash} in ${formatScope(scope)}`, {});
    return { position, key: toKeyInfo(key, scope) };
  }

  /**
   * What every scope operation starts with, in this order: validate the scope (bad input fails
   * before anything else), require an initialised ledger (its current STK), load the scope.
   */
  async #begin(custodian: string, namespace: string | undefined, options: OperationOptions | undefined) {
    const scope = keyScope(custodian, namespace);
    const context = this.#d.context(options);
    const stk = await this.#d.systemKeys.current();
    const state = await this.#loadScope(scope);
    return { scope, context, stk, state };
  }

  /**
   * The scope's state as decisions need it: this process's view of the scope, brought up to the
   * stream's latest revision by folding only the events the view has not applied yet (usually
   * none). The view folds with the same evolveScope, so this equals a fold of the whole stream,
   * without re-reading and re-parsing a long stream on every call.
   */
  async #loadScope(scope: KeyScope): Promise<ScopeState> {
    let state = scopeOf(this.#d.projector.keymeta, scope);
    const fromRevision = state.revision === null ? 0n : state.revision + 1n;
    for (const recorded of await this.#d.store.readStream(this.#d.names.scope(scope), { fromRevision })) {
      const event = parseEventOf(recorded, SCOPE_EVENT_TYPES);
      state = evolveScope(state, event, event.meta.occurredAt, event.revision);
    }
    return state;
  }

  /**
   * Decides and appends, re-deciding on a lost race. New keys' wrapped material is written before
   * the lifecycle event that introduces them, so a reader that sees a key can always find it; a
   * write that then loses its race leaves only unreferenced material behind.
   */
  async #commit(
    scope: KeyScope,
    initial: ScopeState,
    context: OperationContext,
    /** Gets the time the events will carry (a scheduled destruction's due time counts from it). */
    command: (now: Date) => ScopeCommand,
    stk?: SystemKeyHandle,
    keys?: ReadonlyMap<KeyId, SecretBytes>,
  ): Promise<bigint | null> {
    const stream = this.#d.names.scope(scope);
    let state = initial;
    return retryOnConflict(
      async () => {
        const now = this.#d.now();
        const events = decideScope(state, command(now));
        if (events.length === 0) return null;
        await this.#writeMaterial(newKeysIn(state, events), scope, context, now, stk, keys);
        const expected: ExpectedRevision = state.revision ?? 'no_stream';
        const result = await this.#d.store.append(
          stream,
          toStoredEvents(events, context, stream, expected, now),
          expected,
        );
        await this.#d.projector.waitForPosition(result.position);
        return result.position;
      },
      async () => {
        state = await this.#loadScope(scope);
      },
    );
  }

  async #writeMaterial(
    records: readonly { keyId: KeyId; metadataHash: MetadataHash; stkIdentity: string }[],
    scope: KeyScope,
    context: OperationContext,
    /** The command's time: its material and lifecycle events carry one time (as-of queries). */
    now: Date,
    stk: SystemKeyHandle | undefined,
    keys: ReadonlyMap<KeyId, SecretBytes> | undefined,
  ): Promise<void> {
    for (const record of records) {
      const dek = keys?.get(record.keyId);
      if (dek === undefined || stk === undefined || stk.identity !== record.stkIdentity) {
        throw new KeyledgerError(
          'ERR_PROVIDER_INVALID_ANSWER',
          'no key bytes for a key entering the ledger',
          {
            keyId: record.keyId,
          },
        );
      }
      const wrapped = stk.wrap(dek, { ...scope, metadataHash: record.metadataHash });
      const event: DomainEvent = {
        type: 'KeyMaterialWrapped',
        data: {
          ...scope,
          keyId: record.keyId,
          metadataHash: record.metadataHash,
          stkIdentity: stk.identity,
          algorithm: 'AES-256-GCM',
          wrapped,
        },
      };
      const stream = this.#d.names.material(record.keyId);
      const [stored] = toStoredEvents([event], context, stream, 'any', now);
      if (stored === undefined) continue;
      // One id per key and STK: a retried or re-decided write of the same key is idempotent.
      await this.#d.store.append(
        stream,
        [{ ...stored, eventId: deterministicEventId('material', record.keyId, stk.identity) }],
        'any',
      );
    }
  }

  async #appendOperation(event: DomainEvent, context: OperationContext): Promise<bigint> {
    const stream = this.#d.names.operations;
    const result = await this.#d.store.append(
      stream,
      toStoredEvents([event], context, stream, 'any', this.#d.now()),
      'any',
    );
    await this.#d.projector.waitForPosition(result.position);
    return result.position;
  }

  /** The ledger's wrapped copy of a key, with what a provider needs to find its system key. */
  async #material(key: ManagedKey): Promise<WrappedKeyMaterial | null> {
    const events = await this.#d.store.readStream(this.#d.names.material(key.keyId));
    for (let i = events.length - 1; i >= 0; i--) {
      const recorded = events[i];
      if (recorded === undefined) continue;
      const event = parseLedgerEvent(recorded);
      if (event.type === 'KeyMaterialWrapped') {
        const { wrapped, stkIdentity } = event.data;
        return { wrapped, stkIdentity, stkMetadata: this.#d.systemKeys.metadataOf(stkIdentity) };
      }
    }
    return null;
  }

  async #askAbout(state: ScopeState, key: ManagedKey): Promise<KeyFacts> {
    let raw: Awaited<ReturnType<ManagedKeyProvider['unwrapKey']>>;
    try {
      raw = await this.#d.provider.unwrapKey(key.metadata, await this.#material(key));
    } catch (error) {
      if (isKeyledgerError(error)) throw error;
      throw new KeyledgerError(
        'ERR_PROVIDER_FAILED',
        `provider failed on key ${key.metadataHash}`,
        { metadataHash: key.metadataHash },
        { cause: error },
      );
    }
    const answer = checkProviderAnswer(raw);
    answer?.key?.zero();
    if (answer === null) {
      throw new KeyledgerError('ERR_PROVIDER_NO_KEY', `provider has no answer for key ${key.metadataHash}`, {
        metadataHash: key.metadataHash,
      });
    }
    return checkRefreshAnswer(state, key, answer.facts);
  }

  /**
   * A key whose checksum is a recorded system key's identity is that system key: serving it as a
   * DEK would let data encryption use (and rewraps expose) the key that wraps every other key. The
   * provider cannot always tell (a keystore forgets retired STK aliases); the ledger can.
   */
  #notASystemKey(answer: CheckedAnswer | null): CheckedAnswer | null {
    if (answer === null) return null;
    const checksum = answer.facts.key?.checksum;
    if (checksum != null && this.#d.projector.systemKeys.keys.some((k) => k.identity === checksum)) {
      answer.key?.zero();
      throw new KeyledgerError(
        'ERR_PROVIDER_INVALID_ANSWER',
        'the provider offered a system key as a data key',
        {
          scope: formatScope(answer.facts.scope),
        },
      );
    }
    return answer;
  }

  /** Runs `work` with the provider's key bytes at hand by key id, and zeroes them whatever happens. */
  async #withKeys<T>(
    answer: CheckedAnswer | null,
    work: (keys: ReadonlyMap<KeyId, SecretBytes>) => Promise<T>,
  ): Promise<T> {
    const keys = new Map<KeyId, SecretBytes>();
    try {
      if (answer?.key && answer.facts.key) keys.set(answer.facts.key.keyId, answer.key);
      return await work(keys);
    } finally {
      answer?.key?.zero();
    }
  }

  #viewOf(scope: KeyScope): ScopeState {
    return scopeOf(this.#d.projector.keymeta, scope);
  }

  #infos(scope: KeyScope): KeyInfo[] {
    return [...this.#viewOf(scope).keys.values()].map((k) => toKeyInfo(k, scope));
  }

  #activeInfo(scope: KeyScope): KeyInfo {
    const state = this.#viewOf(scope);
    const key = state.activeKeyId === null ? undefined : state.keys.get(state.activeKeyId);
    if (key === undefined)
      throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no ACTIVE key in ${formatScope(scope)}`, {});
    return toKeyInfo(key, scope);
  }

  #enableResult(scope: KeyScope, position: bigint | null): EnableResult {
    const state = this.#viewOf(scope);
    const key = state.activeKeyId === null ? undefined : state.keys.get(state.activeKeyId);
    return { marker: state.marker, key: key === undefined ? null : toKeyInfo(key, scope), position };
  }
}

/** A ManagedKeyDestroyed event's receipt as the API reports it: as written, or read back later. */
function receiptOf(
  data: EventOf<'ManagedKeyDestroyed'>['data'],
  by: { readonly actor: string; readonly reason: string | null; readonly destroyedAt: string },
  position: bigint,
): DestructionReceipt {
  const { receipt, custodian, namespace, keyId, metadataHash, previousState } = data;
  return {
    custodian,
    namespace,
    keyId,
    metadataHash,
    previousState,
    ...receipt,
    destroyedAt: by.destroyedAt,
    actor: by.actor,
    reason: by.reason,
    position,
  };
}
