import { randomBytes } from 'node:crypto';
import { type SystemKeyHandle, softwareSystemKey } from '../../src/crypto/systemKeyHandle.js';
import type { KeyScope } from '../../src/domain/identities.js';
import { scopeKey } from '../../src/domain/identities.js';
import type { ProviderKeyState } from '../../src/domain/keyState.js';
import type { ManagedKeyData, ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { noteTestKey } from './knownTestKeys.js';

/** 32 random bytes, noted for the suite leak scan (knownTestKeys.ts). */
function newKey(label: string): Uint8Array {
  const bytes = randomBytes(32);
  noteTestKey(label, bytes);
  return bytes;
}

/**
 * A provider whose answers a test sets: which key a scope has, in which state, or a wrong answer
 * (another scope, null, a throw). It models a KMS the test controls; the real providers
 * (keystore, generated) have their own contract suite.
 */
export class ScriptedProvider implements ManagedKeyProvider {
  readonly kind = 'scripted';
  readonly #keys = new Map<string, Uint8Array>();
  readonly #current = new Map<string, { name: string; state: ProviderKeyState }>();
  readonly #stk = new Map<string, Uint8Array>();
  #stkName = 'stk-1';
  /** Overrides getManagedKey's answer (e.g. a key of another scope). */
  override: ((scope: KeyScope) => ManagedKeyData | null) | null = null;
  failUnwrapFor = new Set<string>();
  calls = 0;

  constructor() {
    this.#stk.set('stk-1', newKey('scripted stk-1'));
  }

  /** The scope's key becomes `name` (created on first use) in `state`. */
  setKey(scope: KeyScope, name: string, state: ProviderKeyState = 'ACTIVE'): void {
    if (!this.#keys.has(name)) this.#keys.set(name, newKey(`scripted ${name}`));
    this.#current.set(scopeKey(scope), { name, state });
  }

  /** What unwrapKey says about `name` from now on. */
  setState(name: string, state: ProviderKeyState): void {
    this.#states.set(name, state);
  }
  readonly #states = new Map<string, ProviderKeyState>();

  rotateSystemKey(name: string): void {
    this.#stk.set(name, newKey(`scripted ${name}`));
    this.#stkName = name;
  }

  /** Makes key `name` carry the bytes of system key `stkName` (a provider mixing up its keys). */
  reuseSystemKeyAs(name: string, stkName: string): void {
    const bytes = this.#stk.get(stkName);
    if (bytes !== undefined) this.#keys.set(name, Uint8Array.from(bytes));
  }

  /** The raw bytes of a key, so tests can prove they never reach the store. */
  bytesOf(name: string): Uint8Array | undefined {
    return this.#keys.get(name);
  }

  metadataFor(scope: KeyScope, name: string): string {
    return JSON.stringify({ KeyAlias: name, KeyCustodian: scope.custodian, KeyNamespace: scope.namespace });
  }

  async getSystemKey(): Promise<SystemKeyHandle> {
    return this.#systemKey(this.#stkName);
  }

  /** As an HSM would: the named system key is gone afterwards. */
  async destroySystemKey(metadata: string): Promise<void> {
    this.#stk.delete((JSON.parse(metadata) as { KeyAlias: string }).KeyAlias);
  }

  async unwrapSystemKey(metadata: string): Promise<SystemKeyHandle> {
    return this.#systemKey((JSON.parse(metadata) as { KeyAlias: string }).KeyAlias);
  }

  async getManagedKey(scope: KeyScope): Promise<ManagedKeyData | null> {
    this.calls++;
    if (this.override) return this.override(scope);
    const current = this.#current.get(scopeKey(scope));
    if (current === undefined) return { ...scope, state: 'FAILED', metadata: null, key: null };
    return this.#answer(scope, current.name, current.state);
  }

  async unwrapKey(metadata: string): Promise<ManagedKeyData> {
    const parsed = JSON.parse(metadata) as { KeyAlias: string; KeyCustodian: string; KeyNamespace: string };
    if (this.failUnwrapFor.has(parsed.KeyAlias)) throw new Error(`scripted failure for ${parsed.KeyAlias}`);
    const scope = { custodian: parsed.KeyCustodian, namespace: parsed.KeyNamespace } as KeyScope;
    const current = this.#current.get(scopeKey(scope));
    const state =
      this.#states.get(parsed.KeyAlias) ?? (current?.name === parsed.KeyAlias ? current.state : 'INACTIVE');
    return this.#answer(scope, parsed.KeyAlias, state);
  }

  async close(): Promise<void> {}

  #answer(scope: KeyScope, name: string, state: ProviderKeyState): ManagedKeyData {
    const bytes = this.#keys.get(name);
    const usable = state === 'ACTIVE' || state === 'INACTIVE';
    return {
      ...scope,
      state,
      metadata: this.metadataFor(scope, name),
      key: usable && bytes ? SecretBytes.copyOf(bytes) : null,
    };
  }

  #systemKey(name: string): SystemKeyHandle {
    const bytes = this.#stk.get(name);
    if (bytes === undefined) throw new Error(`no system key ${name}`);
    return softwareSystemKey(JSON.stringify({ KeyAlias: name }), SecretBytes.copyOf(bytes));
  }
}
