import { type DekBinding, unwrapDek, wrapDek } from './dekWrap.js';
import { keyChecksum } from './keyChecksum.js';
import type { SecretBytes } from './secretBytes.js';

/**
 * A system key as the ledger uses it: it wraps and unwraps DEKs. A keystore's STK does this in
 * process (softwareSystemKey); an HSM's does it inside the token, so the bytes never have to
 * leave the provider.
 */
export interface SystemKeyHandle {
  /** The STK's checksum: recorded with every DEK it wraps. */
  readonly identity: string;
  /** The provider's metadata naming this STK (e.g. the keystore alias). */
  readonly metadata: string;
  wrap(dek: SecretBytes, binding: Omit<DekBinding, 'stkIdentity'>): string;
  unwrap(
    wrapped: string,
    binding: Omit<DekBinding, 'stkIdentity'>,
    expectedChecksum: string | null,
  ): SecretBytes;
  /** Zeroes any key bytes the handle holds. */
  dispose(): void;
}

/** A system key whose bytes the process holds (keystore providers). Takes ownership of `key`. */
export function softwareSystemKey(metadata: string, key: SecretBytes): SystemKeyHandle {
  const identity = keyChecksum(key);
  return {
    identity,
    metadata,
    wrap: (dek, binding) => wrapDek(key, dek, { ...binding, stkIdentity: identity }),
    unwrap: (wrapped, binding, expectedChecksum) =>
      unwrapDek(key, wrapped, { ...binding, stkIdentity: identity }, expectedChecksum),
    dispose: () => key.zero(),
  };
}
