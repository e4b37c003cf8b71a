import { LRUCache } from 'lru-cache';
import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import { KeyledgerError } from '../domain/errors.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { LedgerProjector } from './ledgerProjector.js';

/** System keys are few (one per rotation); the bound only guards against a runaway. */
const MAX_CACHED_SYSTEM_KEYS = 64;

/**
 * Hands out the handles of recorded system keys (SystemKeyLifecycle records and retires them).
 * Every STK ever recorded stays usable for
 * unwrapping; a handle is fetched from the provider by the metadata recorded for it and must
 * produce the recorded identity, so a provider that swapped the key under a name is caught.
 */
export class SystemKeyHandles {
  readonly #provider: ManagedKeyProvider;
  readonly #projector: LedgerProjector;
  readonly #fetching = new Map<string, Promise<SystemKeyHandle>>();
  /** L1 for system keys, by identity; a handle leaving it is disposed (its bytes zeroed). */
  readonly #handles = new LRUCache<string, SystemKeyHandle>({
    max: MAX_CACHED_SYSTEM_KEYS,
    dispose: (handle) => handle.dispose(),
  });

  constructor(deps: { provider: ManagedKeyProvider; projector: LedgerProjector }) {
    this.#provider = deps.provider;
    this.#projector = deps.projector;
  }

  get isInitialised(): boolean {
    return this.#projector.latestSystemKey() !== null;
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
    // Refused before the provider is asked: a retired key may be destroyed there (destroy-stk),
    // and its answer for a key it no longer has is its own error, not ERR_SYSTEM_KEY_RETIRED.
    if (recorded.retiredAt !== null) {
      throw new KeyledgerError(
        'ERR_SYSTEM_KEY_RETIRED',
        `system key ${identity} is retired and is not used again`,
        {
          identity,
        },
      );
    }
    const fetched = await this.#provider.unwrapSystemKey(recorded.metadata);
    // The handle answers under the identity recorded for it (a version-1 one on older ledgers).
    const handle = fetched.bind(identity);
    if (handle === null) {
      fetched.dispose();
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
}
