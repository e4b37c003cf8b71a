import {
  assertGracePeriod,
  dueDestructions,
  type MaterialCopy,
  type MaterialReceipt,
  materialHashOf,
} from '../domain/decideDestroy.js';
import { KeyledgerError } from '../domain/errors.js';
import { type EventOf, parseEventOf, SCOPE_EVENT_TYPES } from '../domain/events.js';
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
import { findKeyByHash } from '../domain/scopeState.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { EventStore } from '../store/eventStore.js';
import { type KeyInfo, toKeyInfo } from './keyInfo.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { KeyResult, OperationOptions } from './operationOptions.js';
import type { ScopeWriter } from './scopeWriter.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';

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

interface DestructionDeps {
  readonly store: EventStore;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
  readonly systemKeys: SystemKeyHandles;
  readonly scopes: ScopeWriter;
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
 * Crypto-shredding (`ledger.destruction`, docs/audit.md): schedule and cancel the destruction of
 * an INACTIVE or DISABLED key, run the destructions that are due (delete the key's wrapped
 * material, record a receipt), and read the receipts back. The rules are the pure decider's
 * (src/domain/decideDestroy.ts); the scope stream is written through the scope writer.
 */
export class KeyDestruction {
  readonly #d: DestructionDeps;

  constructor(deps: DestructionDeps) {
    this.#d = deps;
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
    const { scope, context, state } = await this.#d.scopes.begin(custodian, namespace, options);
    const { position } = await this.#d.scopes.commit(scope, state, context, (now) => ({
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
    const { scope, context, state } = await this.#d.scopes.begin(custodian, namespace, options);
    const { position } = await this.#d.scopes.commit(scope, state, context, () => ({
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
    for (const scopeState of this.#d.projector.wholeKeymeta('destroyDueKeys').scopes.values()) {
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
    const leftovers: KeyId[] = [];
    for (const keyId of destroyedKeys) {
      if ((await this.#d.store.readStream(this.#d.names.material(keyId))).length > 0) leftovers.push(keyId);
    }
    // Material a crashed run left behind: checkpointed first for the same reason as in #destroyDue.
    if (leftovers.length > 0) await this.#d.checkpoint(context).catch(() => undefined);
    for (const keyId of leftovers) {
      await this.#d.store.deleteStream(this.#d.names.material(keyId));
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
    const materialStream = this.#d.names.material(keyId);
    const state = await this.#d.scopes.load(scope);
    const written = await this.#d.scopes.commit(scope, state, context, async () => ({
      type: 'DestroyDueKey',
      keyId,
      now,
      ...(await this.#materialReceipt(materialStream)),
    }));
    const [event] = written.events;
    if (event === undefined || event.type !== 'ManagedKeyDestroyed' || written.position === null) return null;
    // Checkpoint before deleting: verify excuses a missing material stream only by a receipt a
    // checkpoint covers, counting the material events checkpoints saw. Taken after the deletion
    // (as before), a crash in between left the receipt uncovered, and a rewrap copy written but
    // never checkpointed (a crash before its batch checkpoint) made the receipt's count differ
    // from what the ledger knew, forever (test/reliability/crashSafety.test.ts found both).
    await this.#d.checkpoint(context).catch(() => undefined);
    await this.#d.store.deleteStream(materialStream);
    return receiptOf(event.data, { ...context, destroyedAt: written.at.toISOString() }, written.position);
  }

  /** The receipt of a material stream as it is now: its events' count and materialHashOf. */
  async #materialReceipt(
    materialStream: string,
  ): Promise<{ material: MaterialReceipt; materialStkIdentity: string | null }> {
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
    return {
      material: { materialStream, materialEvents: copies.length, materialHash: materialHashOf(copies) },
      materialStkIdentity: copies.at(-1)?.stkIdentity ?? null,
    };
  }

  #keyInfo(scope: KeyScope, hash: MetadataHash): KeyInfo {
    const key = findKeyByHash(this.#d.scopes.view(scope), hash);
    if (key === null)
      throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no key ${hash} in ${formatScope(scope)}`, {
        scope: formatScope(scope),
        metadataHash: hash,
      });
    return toKeyInfo(key, scope);
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
