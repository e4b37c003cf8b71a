import { randomBytes } from 'node:crypto';
import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import type { KeyScope } from '../../src/domain/identities.js';
import type {
  ManagedKeyData,
  ManagedKeyProvider,
  WrappedKeyMaterial,
} from '../../src/providers/managedKeyProvider.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

/**
 * The faults of a KMS as test/reliability/providerFaultsMultiProcess.test.ts switches them on in
 * each process: `error` rejects, `hang` never answers (until `mode` goes back to `up`), `slow`
 * answers correctly after `slowMs`, `absent` says FAILED (it has no key for the scope), and three wrong
 * answers for getManagedKey: another scope's key, a 16-byte key, or other bytes under the
 * metadata `knownMetadata` gives for the scope (a changed key under known metadata).
 */
export type ChaosMode =
  | 'up'
  | 'error'
  | 'hang'
  | 'slow'
  | 'absent'
  | 'wrong-scope'
  | 'wrong-length'
  | 'changed-key';

export const WRONG_ANSWERS: readonly ChaosMode[] = ['wrong-scope', 'wrong-length', 'changed-key'];

export class ChaosProvider implements ManagedKeyProvider {
  readonly kind: string;
  #mode: ChaosMode = 'up';
  slowMs = 1000;
  /** Every call, faulted ones included. */
  calls = 0;
  /** The metadata the ledger knows for a scope's ACTIVE key (for `changed-key`). */
  knownMetadata: (scope: KeyScope) => string | null = () => null;
  readonly #inner: ManagedKeyProvider;
  #held: (() => void)[] = [];

  constructor(inner: ManagedKeyProvider) {
    this.#inner = inner;
    this.kind = inner.kind;
  }

  get mode(): ChaosMode {
    return this.#mode;
  }

  /** Switches the fault; leaving `hang` lets the held calls go on to the inner provider. */
  set mode(mode: ChaosMode) {
    this.#mode = mode;
    if (mode === 'hang') return;
    const held = this.#held;
    this.#held = [];
    for (const go of held) go();
  }

  getSystemKey(): Promise<SystemKeyHandle> {
    return this.#gate(() => this.#inner.getSystemKey());
  }

  unwrapSystemKey(metadata: string): Promise<SystemKeyHandle> {
    return this.#gate(() => this.#inner.unwrapSystemKey(metadata));
  }

  /** The wrong answers apply here too: a refresh asks about known keys by their metadata. */
  unwrapKey(metadata: string, material: WrappedKeyMaterial | null): Promise<ManagedKeyData> {
    const answer = this.#gate(() => this.#inner.unwrapKey(metadata, material));
    switch (this.#mode) {
      case 'wrong-scope':
        return answer.then((a) => ({ ...a, namespace: `${a.namespace}-other` as typeof a.namespace }));
      case 'wrong-length':
      case 'changed-key':
        return answer.then((a) => {
          a.key?.zero();
          const length = this.#mode === 'wrong-length' ? 16 : 32;
          return { ...a, key: SecretBytes.adopt(new Uint8Array(randomBytes(length))) };
        });
      default:
        return answer;
    }
  }

  getManagedKey(scope: KeyScope): Promise<ManagedKeyData | null> {
    switch (this.#mode) {
      case 'absent':
        // As a keystore answers for a scope it has no key configured for.
        this.calls++;
        return Promise.resolve({ ...scope, state: 'FAILED', metadata: null, key: null });
      case 'wrong-scope':
        this.calls++;
        return this.#inner.getManagedKey({ ...scope, namespace: `${scope.namespace}-other` } as KeyScope);
      case 'wrong-length':
        this.calls++;
        return this.#inner.getManagedKey(scope).then((answer) => {
          answer?.key?.zero();
          return answer && { ...answer, key: SecretBytes.adopt(new Uint8Array(randomBytes(16))) };
        });
      case 'changed-key': {
        this.calls++;
        const metadata = this.knownMetadata(scope);
        return Promise.resolve({
          ...scope,
          state: 'ACTIVE',
          metadata,
          key: SecretBytes.adopt(new Uint8Array(randomBytes(32))),
        });
      }
      default:
        return this.#gate(() => this.#inner.getManagedKey(scope));
    }
  }

  close(): Promise<void> {
    this.mode = 'up';
    return this.#inner.close();
  }

  #gate<T>(call: () => Promise<T>): Promise<T> {
    this.calls++;
    switch (this.#mode) {
      case 'error':
        return Promise.reject(new Error('provider down (test fault)'));
      case 'hang':
        return new Promise<T>((resolve, reject) => {
          this.#held.push(() => {
            call().then(resolve, reject);
          });
        });
      case 'slow':
        return new Promise<T>((resolve, reject) => {
          setTimeout(() => call().then(resolve, reject), this.slowMs);
        });
      default:
        return call();
    }
  }
}
