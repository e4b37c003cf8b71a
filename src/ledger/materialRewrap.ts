import { isSystemKeyRetired } from '../../projections/systemKeys.js';
import type { DekBinding } from '../crypto/dekWrap.js';
import type { RewrapCampaign } from '../domain/decideRewrap.js';
import { KeyledgerError } from '../domain/errors.js';
import { type DomainEvent, type EventOf, parseLedgerEvent } from '../domain/events.js';
import type { KeyId } from '../domain/identities.js';
import type { ManagedKey } from '../domain/scopeState.js';
import { decideAndAppend, expectedAfter, type Journal } from '../journal/decideAndAppend.js';
import { deterministicEventId, type OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { RecordedEvent } from '../store/eventStore.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';

export type KeyOutcome = 'rewrapped' | 'skipped';

/** Rewraps of one key that lost a system-key handle to eviction before giving up. */
const MAX_HANDLE_ATTEMPTS = 4;

interface MaterialRewrapDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
  readonly systemKeys: SystemKeyHandles;
  /** The key as this process's view knows it (its state and recorded checksum). */
  readonly keyOf: (keyId: KeyId) => ManagedKey | undefined;
}

/**
 * One key's step of a rewrap campaign: read its material stream, unwrap the latest material with
 * the STK it names (GCM tag and the key's recorded checksum verified), wrap the DEK under the
 * target STK, zero the DEK, and append a KeyMaterialWrapped expecting the revision read. Its event
 * id is derived from campaign, pass, key and target, so redoing a key whose checkpoint was lost
 * writes nothing twice. Plaintext DEKs exist only inside one synchronous step.
 */
export class MaterialRewrap {
  readonly #d: MaterialRewrapDeps;

  constructor(deps: MaterialRewrapDeps) {
    this.#d = deps;
  }

  /**
   * Re-wraps one key's latest material under `target` if it is under another STK. `rewrapped` when
   * this campaign wrote (now or on an earlier, unrecorded try) the key's latest material.
   */
  async rewrapKey(campaign: RewrapCampaign, keyId: KeyId, context: OperationContext): Promise<KeyOutcome> {
    const stream = this.#d.names.material(keyId);
    const target = campaign.targetStkIdentity;
    // The pass too: a later pass may target the same key bytes again (an STK re-recorded under a
    // new name), and its write must not be mistaken for this one's.
    const eventId = deterministicEventId('rewrap', campaign.campaignId, String(campaign.pass), keyId, target);
    let outcome: KeyOutcome = 'skipped';
    await decideAndAppend<readonly RecordedEvent[], DomainEvent>(this.#d.journal, {
      stream,
      context,
      // The stream moved under us (another writer): read it again and decide again.
      load: async () => {
        const recorded = await this.#d.journal.store.readStream(stream);
        return { state: recorded, expected: expectedAfter(recorded.at(-1)?.revision ?? null) };
      },
      decide: async (recorded) => {
        outcome = 'skipped';
        const found = latestMaterial(recorded);
        if (found === null || this.#d.keyOf(keyId)?.state === 'DESTROYED') return [];
        const { event, stored } = found;
        if (event.data.stkIdentity === target) {
          if (stored.eventId === eventId) outcome = 'rewrapped';
          return [];
        }
        const { custodian, namespace, metadataHash } = event.data;
        const binding = { custodian, namespace, metadataHash };
        // A key the ledger knows has a recorded checksum: the unwrapped bytes must be that key.
        const checksum = this.#d.keyOf(keyId)?.checksum ?? null;
        const wrapped = await this.#rewrapBytes(
          event.data.wrapped,
          event.data.stkIdentity,
          target,
          binding,
          checksum,
        );
        outcome = 'rewrapped';
        return [{ type: 'KeyMaterialWrapped', data: { ...event.data, stkIdentity: target, wrapped } }];
      },
      eventIds: () => [eventId],
      // The run loop catches up once per batch; a wait per key would pace the campaign by the view.
      waitForView: false,
    });
    return outcome;
  }

  /** Unwraps under `from` and wraps under `to` in one synchronous step; the DEK is zeroed at once. */
  async #rewrapBytes(
    wrapped: string,
    from: string,
    to: string,
    binding: Omit<DekBinding, 'stkIdentity'>,
    checksum: string | null,
  ): Promise<string> {
    for (const identity of [from, to]) {
      if (isSystemKeyRetired(this.#d.projector.systemKeys, identity)) {
        throw new KeyledgerError('ERR_SYSTEM_KEY_RETIRED', `system key ${identity} is retired`, {
          identity,
          metadataHash: binding.metadataHash,
        });
      }
    }
    for (let attempt = 0; attempt < MAX_HANDLE_ATTEMPTS; attempt++) {
      await this.#d.systemKeys.byIdentity(from);
      await this.#d.systemKeys.byIdentity(to);
      // Synchronous from here on: neither handle can be evicted (and its bytes zeroed) mid-use.
      const oldKey = this.#d.systemKeys.peek(from);
      const newKey = this.#d.systemKeys.peek(to);
      if (oldKey === undefined || newKey === undefined) continue;
      const dek = oldKey.unwrap(wrapped, binding, checksum);
      try {
        return newKey.wrap(dek, binding);
      } finally {
        dek.zero();
      }
    }
    throw new KeyledgerError(
      'ERR_SYSTEM_KEY_NOT_FOUND',
      'a system key could not be kept in L1 long enough to use',
      {
        from,
        to,
      },
    );
  }
}

/** The latest KeyMaterialWrapped of a material stream, with the stored event (for its id). */
function latestMaterial(
  recorded: readonly RecordedEvent[],
): { event: EventOf<'KeyMaterialWrapped'>; stored: RecordedEvent } | null {
  for (let i = recorded.length - 1; i >= 0; i--) {
    const stored = recorded[i];
    if (stored === undefined) continue;
    const event = parseLedgerEvent(stored);
    if (event.type === 'KeyMaterialWrapped') return { event, stored };
  }
  return null;
}
