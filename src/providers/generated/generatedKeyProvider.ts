import { randomBytes } from 'node:crypto';
import type { SystemKeyHandle } from '../../crypto/systemKeyHandle.js';
import type { KeyScope } from '../../domain/identities.js';
import { metadataHashOf } from '../../domain/keyDigests.js';
import { SecretBytes } from '../../secrets/secretBytes.js';
import { formatKeyMetadata, parseKeyMetadata } from '../keyMetadata.js';
import type { ManagedKeyData, ManagedKeyProvider, WrappedKeyMaterial } from '../managedKeyProvider.js';

/**
 * DEKs made by the ledger from the CSPRNG, under the system key of another provider (a keystore,
 * an HSM). Every request for a scope's key mints a new one, so a rotation always has a new key;
 * the ledger's wrapped copy is the only copy, which is why `unwrapKey` needs it.
 */
export class GeneratedKeyProvider implements ManagedKeyProvider {
  readonly kind = 'generated';
  readonly #systemKeys: ManagedKeyProvider;
  /** Present when the system keys' provider makes its own (an HSM): rotate-stk goes through. */
  readonly createSystemKey?: () => Promise<SystemKeyHandle>;
  readonly destroySystemKey?: (metadata: string) => Promise<void>;

  constructor(options: { readonly systemKeys: ManagedKeyProvider }) {
    this.#systemKeys = options.systemKeys;
    const create = options.systemKeys.createSystemKey?.bind(options.systemKeys);
    if (create !== undefined) this.createSystemKey = create;
    const destroy = options.systemKeys.destroySystemKey?.bind(options.systemKeys);
    if (destroy !== undefined) this.destroySystemKey = destroy;
  }

  getSystemKey(): Promise<SystemKeyHandle> {
    return this.#systemKeys.getSystemKey();
  }

  unwrapSystemKey(metadata: string): Promise<SystemKeyHandle> {
    return this.#systemKeys.unwrapSystemKey(metadata);
  }

  async getManagedKey(scope: KeyScope): Promise<ManagedKeyData> {
    const id = randomBytes(16).toString('base64url');
    return {
      ...scope,
      state: 'ACTIVE',
      metadata: formatKeyMetadata({ kind: 'generated', id, scope }),
      key: SecretBytes.adopt(randomBytes(32)),
    };
  }

  /** A generated key is usable exactly while its wrapped copy unwraps; without it, FAILED. */
  async unwrapKey(metadata: string, material: WrappedKeyMaterial | null): Promise<ManagedKeyData> {
    const parsed = parseKeyMetadata(metadata);
    const canonical = formatKeyMetadata(parsed);
    const answer = { ...parsed.scope, metadata: canonical };
    if (parsed.kind !== 'generated' || material === null) return { ...answer, state: 'FAILED', key: null };
    const fetched = await this.#systemKeys.unwrapSystemKey(material.stkMetadata);
    const stk = fetched.bind(material.stkIdentity);
    if (stk === null) {
      fetched.dispose();
      return { ...answer, state: 'FAILED', key: null };
    }
    try {
      const key = stk.unwrap(
        material.wrapped,
        { ...parsed.scope, metadataHash: metadataHashOf(canonical) },
        null,
      );
      return { ...answer, state: 'ACTIVE', key };
    } finally {
      stk.dispose();
    }
  }

  close(): Promise<void> {
    return this.#systemKeys.close();
  }
}
