import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import type { KeyScope } from '../../src/domain/identities.js';
import type {
  ManagedKeyData,
  ManagedKeyProvider,
  WrappedKeyMaterial,
} from '../../src/providers/managedKeyProvider.js';

/** `up`: calls go through; `down`: every call rejects; `hang`: every call waits for `recover()`. */
export type ProviderHealth = 'up' | 'down' | 'hang';

/**
 * Wraps a provider with the faults a test switches on (a KMS that is down or does not answer) and
 * counts the calls per method, faulted ones included, so tests can tell which layer answered.
 */
export class FaultyProvider implements ManagedKeyProvider {
  readonly kind: string;
  health: ProviderHealth = 'up';
  readonly calls = { getSystemKey: 0, unwrapSystemKey: 0, getManagedKey: 0, unwrapKey: 0 };
  readonly #inner: ManagedKeyProvider;
  #held: (() => void)[] = [];

  constructor(inner: ManagedKeyProvider) {
    this.#inner = inner;
    this.kind = inner.kind;
  }

  /** Calls waiting because of `hang`. */
  get waiting(): number {
    return this.#held.length;
  }

  /** Back up: later calls go through, and calls held by `hang` go on to the inner provider now. */
  recover(): void {
    this.health = 'up';
    const held = this.#held;
    this.#held = [];
    for (const go of held) go();
  }

  totalCalls(): number {
    const c = this.calls;
    return c.getSystemKey + c.unwrapSystemKey + c.getManagedKey + c.unwrapKey;
  }

  getSystemKey(): Promise<SystemKeyHandle> {
    this.calls.getSystemKey++;
    return this.#gate(() => this.#inner.getSystemKey());
  }

  unwrapSystemKey(metadata: string): Promise<SystemKeyHandle> {
    this.calls.unwrapSystemKey++;
    return this.#gate(() => this.#inner.unwrapSystemKey(metadata));
  }

  getManagedKey(scope: KeyScope): Promise<ManagedKeyData | null> {
    this.calls.getManagedKey++;
    return this.#gate(() => this.#inner.getManagedKey(scope));
  }

  unwrapKey(metadata: string, material: WrappedKeyMaterial | null): Promise<ManagedKeyData> {
    this.calls.unwrapKey++;
    return this.#gate(() => this.#inner.unwrapKey(metadata, material));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  #gate<T>(call: () => Promise<T>): Promise<T> {
    switch (this.health) {
      case 'up':
        return call();
      case 'down':
        return Promise.reject(new Error('provider down (test fault)'));
      case 'hang':
        return new Promise<T>((resolve, reject) => {
          this.#held.push(() => {
            call().then(resolve, reject);
          });
        });
      default: {
        const unreachable: never = this.health;
        return unreachable;
      }
    }
  }
}
