import { LRUCache } from 'lru-cache';
import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import { decideInitialise, decideRotateSystemKey, type SystemKeyFacts } from '../domain/decideSystemKey.js';
import { KeyledgerError } from '../domain/errors.js';
import type { DomainEvent } from '../domain/events.js';
import { metadataHashOf } from '../domain/keyDigests.js';
import { type OperationContext, toStoredEvents } from '../journal/eventFactory.js';
import { retryOnConflict } from '../journal/retryOnConflict.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import type { LedgerProjector } from './ledgerProjector.js';

/** System keys are few (one per rotation); the bound only guards against a runaway. */
const MAX_CACHED_SYSTEM_KEYS = 64;

export interface SystemKeyChange {
  readonly changed: boolean;
  readonly sequence: number;
  readonly identity: string;
  /** Global position written (null when nothing changed). */
  readonly position: bigint | null;
}

/**
 * Records system keys and hands out their handles. Every STK ever recorded stays usable for
 * unwrapping; a handle is fetched from the provider by the metadata recorded for it and must
 * produce the recorded identity, so a provider that swapped the key under a name is caught.
 */
export class SystemKeyManager {
  readonly #store: EventStore;
  readonly #names: StreamNames;
  readonly #provider: ManagedKeyProvider;
  readonly #projector: LedgerProjector;
  readonly #now: () => Date;
  readonly #fetching = new Map<string, Promise<SystemKeyHandle>>();
  /** L1 for system keys, by identity; a handle leaving it is disposed (its bytes zeroed). */
  readonly #handles = new LRUCache<string, SystemKeyHandle>({
    max: MAX_CACHED_SYSTEM_KEYS,
    dispose: (handle) => handle.dispose(),
  });

  constructor(deps: {
    store: EventStore;
    names: StreamNames;
    provider: ManagedKeyProvider;
    projector: LedgerProjector;
    now: () => Date;
  }) {
    this.#store = deps.store;
    this.#names = deps.names;
    this.#provider = deps.provider;
    this.#projector = deps.projector;
    this.#now = deps.now;
  }

  get isInitialised(): boolean {
    return this.#projector.latestSystemKey() !== null;
  }

  /** Records the provider's system key as the ledger's first. */
  async initialise(context: OperationContext): Promise<SystemKeyChange> {
    return this.#record(context, (facts) => decideInitialise(this.#projector.latestSystemKey(), facts));
  }

  /** HBase's rotateSTK: records the provider's current system key if it is a new one. */
  async rotate(context: OperationContext): Promise<SystemKeyChange> {
    return this.#record(context, (facts) => decideRotateSystemKey(this.#projector.latestSystemKey(), facts));
  }

  /** The handle of the latest recorded system key (what new DEKs are wrapped under). */
  async current(): Promise<SystemKeyHandle> {
    const latest = this.#projector.latestSystemKey();
    if (latest === null) {
      throw new KeyledgerError(
        'ERR_LEDGER_NOT_INITIALISED',
        'the ledger has no system key yet; run init',
        {},
      );
    }
    return this.byIdentity(latest.identity);
  }

  /** The handle of a recorded system key if L1 has it: the resolver's synchronous path. */
  peek(identity: string): SystemKeyHandle | undefined {
    return this.#handles.get(identity);
  }

  /**
   * The handle of a recorded system key. Handles stay owned by the manager: use one within the
   * synchronous step that got it, since a handle evicted later is disposed.
   */
  byIdentity(identity: string): Promise<SystemKeyHandle> {
    const cached = this.#handles.get(identity);
    if (cached !== undefined) return Promise.resolve(cached);
    // Concurrent cold lookups of one STK share one provider call.
    let fetching = this.#fetching.get(identity);
    if (fetching === undefined) {
      fetching = this.#fetchHandle(identity).finally(() => this.#fetching.delete(identity));
      this.#fetching.set(identity, fetching);
    }
    return fetching;
  }

  async #fetchHandle(identity: string): Promise<SystemKeyHandle> {
    const recorded = this.#projector.systemKeys.keys.find((k) => k.identity === identity);
    if (recorded === undefined) {
      throw new KeyledgerError('ERR_SYSTEM_KEY_NOT_FOUND', `no system key ${identity} is recorded`, {
        identity,
      });
    }
    const handle = await this.#provider.unwrapSystemKey(recorded.metadata);
    if (handle.identity !== identity) {
      handle.dispose();
      throw new KeyledgerError(
        'ERR_SYSTEM_KEY_NOT_FOUND',
        `the provider's key for system key #${recorded.sequence} is not the recorded one (identity ${identity})`,
        { identity, sequence: recorded.sequence },
      );
    }
    const raced = this.#handles.get(identity);
    if (raced !== undefined) {
      // Another call fetched it meanwhile: keep one handle.
      handle.dispose();
      return raced;
    }
    this.#handles.set(identity, handle);
    return handle;
  }

  metadataOf(identity: string): string {
    const recorded = this.#projector.systemKeys.keys.find((k) => k.identity === identity);
    if (recorded === undefined) {
      throw new KeyledgerError('ERR_SYSTEM_KEY_NOT_FOUND', `no system key ${identity} is recorded`, {
        identity,
      });
    }
    return recorded.metadata;
  }

  /** A retired system key leaves L1 at once (its bytes zeroed); it is never fetched again. */
  forget(identity: string): void {
    this.#handles.delete(identity);
  }

  close(): void {
    this.#handles.clear();
  }

  async #record(
    context: OperationContext,
    decide: (facts: SystemKeyFacts) => DomainEvent[],
  ): Promise<SystemKeyChange> {
    const handle = await this.#provider.getSystemKey();
    const facts: SystemKeyFacts = {
      identity: handle.identity,
      metadata: handle.metadata,
      metadataHash: metadataHashOf(handle.metadata),
    };
    handle.dispose();
    const stream = this.#names.system;
    return retryOnConflict(
      async () => {
        const events = decide(facts);
        const latest = this.#projector.latestSystemKey();
        if (events.length === 0) {
          return {
            changed: false,
            sequence: latest?.sequence ?? 0,
            identity: facts.identity,
            position: null,
          };
        }
        const expected = (await this.#store.readStream(stream)).at(-1)?.revision ?? 'no_stream';
        const result = await this.#store.append(
          stream,
          toStoredEvents(events, context, stream, expected, this.#now()),
          expected,
        );
        await this.#projector.waitForPosition(result.position);
        const now = this.#projector.latestSystemKey();
        return {
          changed: true,
          sequence: now?.sequence ?? 0,
          identity: facts.identity,
          position: result.position,
        };
      },
      // Another process recorded a system key meanwhile: catch up with it before deciding again.
      async () => {
        const last = (await this.#store.readStream(stream)).at(-1);
        if (last !== undefined) await this.#projector.waitForPosition(last.position);
      },
    );
  }
}
