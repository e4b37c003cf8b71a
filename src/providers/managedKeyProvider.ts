import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import type { Custodian, KeyScope, Namespace } from '../domain/identities.js';
import type { ProviderKeyState } from '../domain/keyState.js';
import type { SecretBytes } from '../secrets/secretBytes.js';

/** A provider's answer about a managed key (HBase's ManagedKeyData). */
export interface ManagedKeyData {
  readonly custodian: Custodian;
  readonly namespace: Namespace;
  readonly state: ProviderKeyState;
  /**
   * The provider's canonical metadata naming the key (null when it has none to name, e.g. no
   * alias configured). The ledger hashes exactly this string, so it must be canonical.
   */
  readonly metadata: string | null;
  /** The 256-bit key, present when the state is ACTIVE or INACTIVE. The caller owns and zeroes it. */
  readonly key: SecretBytes | null;
}

/** The ledger's stored copy of a DEK, wrapped under a system key, and which system key that is. */
export interface WrappedKeyMaterial {
  readonly wrapped: string;
  readonly stkIdentity: string;
  /** The recorded metadata of that system key, so a provider can fetch it. */
  readonly stkMetadata: string;
}

/**
 * Where keys come from (HBase's ManagedKeyProvider). Answers are not trusted: the ledger checks
 * scope, state and metadata before it persists anything.
 */
export interface ManagedKeyProvider {
  readonly kind: string;
  /** The current system key (STK). The caller disposes the handle. */
  getSystemKey(): Promise<SystemKeyHandle>;
  /**
   * Only for providers that make their system keys themselves (an HSM): creates the next system
   * key, which becomes the current one, and returns its handle. `rotate-stk` calls it when the
   * provider's current key is already the ledger's latest; providers whose keys an operator puts in
   * place (a keystore) leave it out and are rotated by changing their configuration.
   */
  createSystemKey?(): Promise<SystemKeyHandle>;
  /**
   * Only for providers that make their system keys themselves: deletes the key named by its
   * recorded metadata from the provider (an HSM's key objects). The ledger calls it only for a
   * system key it has retired (`destroy-stk`); a key already gone is not an error.
   */
  destroySystemKey?(metadata: string): Promise<void>;
  /** An earlier (or the current) system key by the metadata recorded for it. */
  unwrapSystemKey(metadata: string): Promise<SystemKeyHandle>;
  /** The key the provider designates for a scope; null if it has no answer at all. */
  getManagedKey(scope: KeyScope): Promise<ManagedKeyData | null>;
  /**
   * The provider's view of a key named by its metadata: its state now and, where the provider can
   * supply them, its bytes. `material` is the ledger's wrapped copy, for providers that keep none.
   * Malformed metadata is ERR_INVALID_METADATA.
   */
  unwrapKey(metadata: string, material: WrappedKeyMaterial | null): Promise<ManagedKeyData>;
  close(): Promise<void>;
}
