import { readFileSync, statSync } from 'node:fs';
import { type SystemKeyHandle, softwareSystemKey } from '../../crypto/systemKeyHandle.js';
import { KeyledgerError } from '../../domain/errors.js';
import { type KeyScope, scopeKey } from '../../domain/identities.js';
import type { SecretBytes } from '../../secrets/secretBytes.js';
import {
  formatKeyMetadata,
  formatSystemKeyMetadata,
  parseKeyMetadata,
  parseSystemKeyMetadata,
} from '../keyMetadata.js';
import type { ManagedKeyData, ManagedKeyProvider } from '../managedKeyProvider.js';
import { type KeystoreConfig, readPassword } from './keystoreConfig.js';
import { KEYSTORE_LIMITS } from './keystoreLimits.js';
import { openPkcs12Keystore, type Pkcs12Keystore, tooLarge } from './openPkcs12Keystore.js';

interface LoadedKeystore {
  readonly mtimeMs: number;
  readonly size: number;
  readonly store: Pkcs12Keystore;
  /** Keys decrypted so far: an entry is decrypted the first time it is asked for, not at load. */
  readonly keys: Map<string, SecretBytes>;
}

/**
 * HBase's ManagedKeyStoreKeyProvider over a PKCS#12 keystore as keytool writes it. A scope's key is
 * the configured alias; no alias → FAILED; alias configured but absent from the keystore → FAILED if
 * the scope is marked active, DISABLED if not. The file is re-read when it changes, so an operator
 * can add a key and rotate without restarting a long-lived process.
 */
export class KeystoreKeyProvider implements ManagedKeyProvider {
  readonly kind = 'keystore';
  readonly #config: KeystoreConfig;
  #loaded: LoadedKeystore | null = null;

  constructor(config: KeystoreConfig) {
    this.#config = config;
  }

  async getSystemKey(): Promise<SystemKeyHandle> {
    return this.#systemKey(this.#config.systemKeyAlias);
  }

  /**
   * Only a configured system-key alias (current or previous) is served: metadata in the ledger is
   * not trusted to say which keystore entry is a system key, since whoever can write the store can
   * write metadata naming a tenant's data key.
   */
  async unwrapSystemKey(metadata: string): Promise<SystemKeyHandle> {
    const alias = parseSystemKeyMetadata(metadata);
    if (!this.#isSystemKeyAlias(alias)) {
      throw new KeyledgerError(
        'ERR_SYSTEM_KEY_NOT_CONFIGURED',
        `keystore alias ${alias} is not a configured system key; if it is an earlier system key, add it to keystore.previousSystemKeyAliases`,
        { alias },
      );
    }
    return this.#systemKey(alias);
  }

  async getManagedKey(scope: KeyScope): Promise<ManagedKeyData | null> {
    const configured = this.#config.scopes.get(scopeKey(scope));
    if (configured === undefined) return { ...scope, state: 'FAILED', metadata: null, key: null };
    return this.#answer(scope, configured.alias, configured.active);
  }

  async unwrapKey(metadata: string): Promise<ManagedKeyData> {
    const parsed = parseKeyMetadata(metadata);
    if (parsed.kind !== 'alias') {
      throw new KeyledgerError('ERR_INVALID_METADATA', 'keystore keys are named by KeyAlias', {});
    }
    if (this.#isSystemKeyAlias(parsed.alias)) {
      throw new KeyledgerError('ERR_INVALID_METADATA', 'the system key cannot be used as a data key', {});
    }
    // An alias configured as another scope's key does not belong to the scope the metadata names.
    const owners = [...this.#config.scopes]
      .filter(([, entry]) => entry.alias === parsed.alias)
      .map(([key]) => key);
    if (owners.length > 0 && !owners.includes(scopeKey(parsed.scope))) {
      throw new KeyledgerError(
        'ERR_PROVIDER_WRONG_SCOPE',
        `keystore alias ${parsed.alias} is configured for ${owners.join(', ')}, not ${scopeKey(parsed.scope)}`,
        { alias: parsed.alias, scope: scopeKey(parsed.scope) },
      );
    }
    // The scope's configured key follows its .active flag; any other alias of the scope is an
    // earlier key, still usable for decryption while the keystore holds it.
    const configured = this.#config.scopes.get(scopeKey(parsed.scope));
    const current = configured !== undefined && configured.alias === parsed.alias;
    return this.#answer(parsed.scope, parsed.alias, current && configured.active);
  }

  async close(): Promise<void> {
    this.#forget();
  }

  #isSystemKeyAlias(alias: string): boolean {
    const lower = alias.toLowerCase();
    return lower === this.#config.systemKeyAlias || this.#config.previousSystemKeyAliases.includes(lower);
  }

  #answer(scope: KeyScope, alias: string, active: boolean): ManagedKeyData {
    const metadata = formatKeyMetadata({ kind: 'alias', alias, scope });
    const key = this.#key(alias);
    if (key === undefined) return { ...scope, state: active ? 'FAILED' : 'DISABLED', metadata, key: null };
    return { ...scope, state: active ? 'ACTIVE' : 'INACTIVE', metadata, key: key.clone() };
  }

  #systemKey(alias: string): SystemKeyHandle {
    const key = this.#key(alias);
    if (key === undefined) {
      throw new KeyledgerError(
        'ERR_KEYSTORE_ALIAS_NOT_FOUND',
        `keystore ${this.#config.path} has no secret key with alias ${alias}`,
        { path: this.#config.path, alias },
      );
    }
    if (key.length !== 32) {
      throw new KeyledgerError(
        'ERR_PROVIDER_INVALID_ANSWER',
        `system key ${alias} is ${key.length * 8}-bit; a 256-bit AES key is required`,
        { alias, bits: key.length * 8 },
      );
    }
    return softwareSystemKey(formatSystemKeyMetadata(alias), key.clone());
  }

  #key(alias: string): SecretBytes | undefined {
    const loaded = this.#load();
    const cached = loaded.keys.get(alias);
    if (cached !== undefined || !loaded.store.has(alias)) return cached;
    const entry = loaded.store.secretKey(alias, readPassword(this.#config.password));
    if (entry === undefined) return undefined;
    loaded.keys.set(alias, entry.key);
    return entry.key;
  }

  #load(): LoadedKeystore {
    const { path } = this.#config;
    let stat: { mtimeMs: number; size: number };
    try {
      stat = statSync(path);
    } catch (error) {
      throw new KeyledgerError(
        'ERR_KEYSTORE_NOT_FOUND',
        `keystore ${path} cannot be read`,
        { path },
        { cause: error },
      );
    }
    if (this.#loaded !== null && this.#loaded.mtimeMs === stat.mtimeMs && this.#loaded.size === stat.size) {
      return this.#loaded;
    }
    // Checked before reading, so an oversized file is never pulled into memory.
    if (stat.size > KEYSTORE_LIMITS.fileBytes) throw tooLarge();
    const store = openPkcs12Keystore(readFileSync(path), readPassword(this.#config.password));
    this.#forget();
    this.#loaded = { mtimeMs: stat.mtimeMs, size: stat.size, store, keys: new Map() };
    return this.#loaded;
  }

  #forget(): void {
    for (const key of this.#loaded?.keys.values() ?? []) key.zero();
    this.#loaded = null;
  }
}
