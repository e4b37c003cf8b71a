import type { SystemKeyView } from '../../projections/systemKeys.js';
import type { RewrapCampaign } from '../domain/decideRewrap.js';
import { decideRetireSystemKey } from '../domain/decideRewrap.js';
import {
  type DestroyFacts,
  decideDestroySystemKey,
  decideInitialise,
  decideRotateSystemKey,
  type SystemKeyFacts,
} from '../domain/decideSystemKey.js';
import { KeyledgerError } from '../domain/errors.js';
import type { DomainEvent } from '../domain/events.js';
import { metadataHashOf } from '../domain/keyDigests.js';
import { decideAndAppend, expectedAfter, type Journal, type Loaded } from '../journal/decideAndAppend.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { LedgerProjector } from './ledgerProjector.js';

export interface SystemKeyChange {
  readonly changed: boolean;
  readonly sequence: number;
  readonly identity: string;
  /** Global position written (null when nothing changed). */
  readonly position: bigint | null;
}

export interface DestroyResult {
  readonly identity: string;
  readonly sequence: number;
  /** False when the key was recorded as destroyed already (nothing done, nothing written). */
  readonly changed: boolean;
  readonly position: bigint | null;
}

export interface RetireResult {
  readonly identity: string;
  readonly sequence: number;
  readonly position: bigint;
}

/** What retiring a system key must know besides the system keys: who still uses it. */
export interface SystemKeyUsageFacts {
  /** Keys whose latest material is wrapped under the key (DESTROYED keys excluded). */
  readonly referencingKeys: number;
  /** The unfinished rewrap campaign, if any. */
  readonly openCampaign: RewrapCampaign | null;
}

interface LifecycleDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly provider: ManagedKeyProvider;
  readonly projector: LedgerProjector;
}

const STK_IDENTITY = /^[0-9a-f]{16}$/;

/**
 * The system keys' lifecycle, every write of the system stream: record the first (init), record
 * the provider's new one (rotateSTK), retire an old one, destroy a retired one in the provider. The decisions are the pure deciders'
 * (decideSystemKey, decideRetireSystemKey); the handles the keys are used through are
 * in SystemKeyHandles.
 */
export class SystemKeyLifecycle {
  readonly #d: LifecycleDeps;

  constructor(deps: LifecycleDeps) {
    this.#d = deps;
  }

  /** Records the provider's system key as the ledger's first. */
  initialise(context: OperationContext): Promise<SystemKeyChange> {
    return this.#record(context, (facts) => decideInitialise(this.#d.projector.latestSystemKey(), facts));
  }

  /**
   * HBase's rotateSTK: records the provider's current system key if it is a new one. A provider
   * that makes its own system keys (createSystemKey, an HSM) is first asked for a new one, unless
   * its current key is not recorded yet (an earlier rotation that created it and then failed to
   * record): so a retried rotate-stk records that key instead of making another.
   */
  async rotate(
    context: OperationContext,
    /**
     * Checked against the latest recorded system key on every try, before deciding: false records
     * nothing (rotate-due-keys: another process rotated first). Also checked before a provider
     * that makes its own keys is asked for a new one.
     */
    onlyIf?: (latest: SystemKeyView | null, now: Date) => boolean,
  ): Promise<SystemKeyChange> {
    const { provider } = this.#d;
    if (onlyIf !== undefined && !onlyIf(this.#d.projector.latestSystemKey(), this.#d.journal.now())) {
      return this.#unchanged();
    }
    if (provider.createSystemKey !== undefined) {
      const current = await provider.getSystemKey();
      const recorded = this.#d.projector.latestSystemKey();
      const known = recorded !== null && current.names(recorded.identity);
      current.dispose();
      if (known) (await provider.createSystemKey()).dispose();
    }
    return this.#record(context, (facts, now) =>
      onlyIf !== undefined && !onlyIf(this.#d.projector.latestSystemKey(), now)
        ? []
        : decideRotateSystemKey(this.#d.projector.latestSystemKey(), facts),
    );
  }

  #unchanged(): SystemKeyChange {
    const latest = this.#d.projector.latestSystemKey();
    return {
      changed: false,
      sequence: latest?.sequence ?? 0,
      identity: latest?.identity ?? '',
      position: null,
    };
  }

  /**
   * Retires a system key: SystemKeyRetired on the system stream, after which the key is never
   * fetched or wrapped under again. Refused for the current STK (ERR_SYSTEM_KEY_CURRENT), while any
   * key's material is still under it or an unfinished campaign targets it (ERR_SYSTEM_KEY_IN_USE),
   * and for one already retired (ERR_SYSTEM_KEY_ALREADY_RETIRED). `usage` brings this process's
   * views up to the store and says who uses the key (the rewrap campaigns know).
   */
  async retire(
    identity: string,
    context: OperationContext,
    usage: (identity: string) => Promise<SystemKeyUsageFacts>,
  ): Promise<RetireResult> {
    if (!STK_IDENTITY.test(identity)) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'a system key identity is 16 lowercase hex characters',
        {
          identity: identity.slice(0, 64),
        },
      );
    }
    const written = await decideAndAppend(this.#d.journal, {
      stream: this.#d.names.system,
      context,
      load: async () => {
        const expected = await this.#expected();
        // After reading the revision: the views then include at least what is decided against.
        return { state: await usage(identity), expected };
      },
      decide: (facts) =>
        decideRetireSystemKey({
          identity,
          systemKeys: this.#d.projector.systemKeys.keys.map((k) => ({
            sequence: k.sequence,
            identity: k.identity,
            retired: k.retiredAt !== null,
          })),
          referencingKeys: facts.referencingKeys,
          openCampaign: facts.openCampaign,
        }),
    });
    const [retired] = written.events;
    return { identity, sequence: retired?.data.sequence ?? 0, position: written.position ?? 0n };
  }

  /**
   * Destroys a retired system key in the provider that made it (an HSM's key objects) and records
   * SystemKeyDestroyed (actor, reason, identity, sequence, metadata naming the objects). Refused for
   * a key the ledger never recorded (ERR_SYSTEM_KEY_NOT_FOUND), one not retired
   * (ERR_SYSTEM_KEY_NOT_RETIRED: it may still unwrap something), and by providers whose keys an
   * operator manages (ERR_INVALID_ARGUMENT); nothing is destroyed or written then.
   *
   * Destroy first, then record. A crash (or a failing token) between the two leaves a retired key
   * whose objects are gone and no event: the ledger then claims less than happened, never more, and
   * re-running destroy-stk finds the objects already gone (the provider skips them) and records the
   * event. Recording first would, on the same crash, leave the ledger saying a key is destroyed
   * while the token still holds it. A key already recorded as destroyed is left alone: nothing is
   * written and `changed` is false.
   */
  async destroyRetired(identity: string, context: OperationContext): Promise<DestroyResult> {
    if (!STK_IDENTITY.test(identity)) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'a system key identity is 16 lowercase hex characters',
        {
          identity: identity.slice(0, 64),
        },
      );
    }
    const facts = (): DestroyFacts => ({
      identity,
      systemKeys: this.#d.projector.systemKeys.keys.map((k) => ({
        sequence: k.sequence,
        identity: k.identity,
        metadata: k.metadata,
        retired: k.retiredAt !== null,
        destroyed: k.destroyedAt !== null,
      })),
    });
    const load = async (): Promise<Loaded<null>> => {
      const last = (await this.#d.journal.store.readStream(this.#d.names.system)).at(-1);
      if (last !== undefined) await this.#d.projector.waitForPosition(last.position);
      return { state: null, expected: expectedAfter(last?.revision ?? null) };
    };
    // Decided once before the token is touched: a refusal destroys nothing.
    await load();
    const [decided] = decideDestroySystemKey(facts());
    if (decided === undefined) {
      const key = this.#d.projector.systemKeys.keys.find((k) => k.identity === identity);
      return { identity, sequence: key?.sequence ?? 0, changed: false, position: null };
    }
    const { provider } = this.#d;
    if (provider.destroySystemKey === undefined) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        `the ${provider.kind} provider's system keys are removed with its own tools, not by keyledger`,
        { provider: provider.kind },
      );
    }
    await provider.destroySystemKey(decided.data.metadata);
    // Decided again against the stream as it is now: another process may have recorded it meanwhile.
    const written = await decideAndAppend(this.#d.journal, {
      stream: this.#d.names.system,
      context,
      load,
      decide: () => decideDestroySystemKey(facts()),
    });
    return {
      identity,
      sequence: decided.data.sequence,
      changed: written.position !== null,
      position: written.position,
    };
  }

  async #record(
    context: OperationContext,
    decide: (facts: SystemKeyFacts, now: Date) => DomainEvent[],
  ): Promise<SystemKeyChange> {
    const handle = await this.#d.provider.getSystemKey();
    // The latest STK recorded under its version-1 identity is still the same key: keep its name.
    const recorded = this.#d.projector.latestSystemKey();
    const facts: SystemKeyFacts = {
      identity: recorded !== null && handle.names(recorded.identity) ? recorded.identity : handle.identity,
      metadata: handle.metadata,
      metadataHash: metadataHashOf(handle.metadata),
    };
    handle.dispose();
    const written = await decideAndAppend(this.#d.journal, {
      stream: this.#d.names.system,
      context,
      // The view decided against includes the stream up to the revision the append expects: a
      // system key another process recorded meanwhile is seen before deciding again.
      load: async (): Promise<Loaded<null>> => {
        const last = (await this.#d.journal.store.readStream(this.#d.names.system)).at(-1);
        if (last !== undefined) await this.#d.projector.waitForPosition(last.position);
        return { state: null, expected: expectedAfter(last?.revision ?? null) };
      },
      decide: (_state, now) => decide(facts, now),
    });
    const latest = this.#d.projector.latestSystemKey();
    return {
      changed: written.position !== null,
      sequence: latest?.sequence ?? 0,
      identity: facts.identity,
      position: written.position,
    };
  }

  /** The revision the system stream's next append must find. */
  async #expected() {
    const last = (await this.#d.journal.store.readStream(this.#d.names.system)).at(-1);
    return expectedAfter(last?.revision ?? null);
  }
}
