import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import { KeyledgerError } from '../domain/errors.js';
import { type DomainEvent, parseLedgerEvent } from '../domain/events.js';
import type { KeyId, KeyScope, MetadataHash } from '../domain/identities.js';
import type { ManagedKey } from '../domain/scopeState.js';
import { appendEvents, type Journal } from '../journal/decideAndAppend.js';
import { deterministicEventId, type OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { WrappedKeyMaterial } from '../providers/managedKeyProvider.js';
import type { SecretBytes } from '../secrets/secretBytes.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';

/** The provider's key bytes for the keys a command introduces, and the STK to wrap them under. */
export interface NewKeyMaterial {
  readonly stk: SystemKeyHandle;
  readonly keys: ReadonlyMap<KeyId, SecretBytes>;
}

interface MaterialDeps {
  readonly journal: Journal;
  readonly names: Pick<StreamNames, 'material'>;
  readonly systemKeys: Pick<SystemKeyHandles, 'metadataOf'>;
}

/**
 * KeymetaAdmin's use of the material streams: a new key's DEK wrapped under the STK and written to
 * its own stream (before the lifecycle event that introduces the key), and the ledger's wrapped
 * copy read back for a provider that needs it.
 */
export class KeyMaterialStreams {
  readonly #d: MaterialDeps;

  constructor(deps: MaterialDeps) {
    this.#d = deps;
  }

  async write(
    records: readonly { keyId: KeyId; metadataHash: MetadataHash; stkIdentity: string }[],
    scope: KeyScope,
    context: OperationContext,
    /** The command's time: its material and lifecycle events carry one time (as-of queries). */
    now: Date,
    material: NewKeyMaterial | undefined,
  ): Promise<void> {
    for (const record of records) {
      const dek = material?.keys.get(record.keyId);
      const stk = material?.stk;
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
      await appendEvents(
        { ...this.#d.journal, now: () => now },
        {
          stream: this.#d.names.material(record.keyId),
          context,
          events: [event],
          // One id per key and STK: a retried or re-decided write of the same key is idempotent.
          eventIds: () => [deterministicEventId('material', record.keyId, stk.identity)],
          // The lifecycle event that follows is waited for, and it comes after this one.
          waitForView: false,
        },
      );
    }
  }

  /** The ledger's wrapped copy of a key, with what a provider needs to find its system key. */
  async latest(key: ManagedKey): Promise<WrappedKeyMaterial | null> {
    const events = await this.#d.journal.store.readStream(this.#d.names.material(key.keyId));
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
}
