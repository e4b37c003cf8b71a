import { createHmac, hkdfSync } from 'node:crypto';
import type { SecretBytes } from '../secrets/secretBytes.js';
import { type DekBinding, unwrapDek, wrapDek } from './dekWrap.js';
import { keyChecksum } from './keyChecksum.js';

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
  /**
   * HMAC-SHA256 of `message` under a key derived from the STK for one purpose: HKDF-SHA256 with
   * the STK as input key, an empty salt and `label` (UTF-8) as info, 32 bytes. The ledger's
   * checkpoints are MACed this way (label "keyledger checkpoint mac v1"), so only the STK's holder
   * can make one, and an HSM can compute it inside the token. A distinct label per purpose keeps
   * these MACs apart from each other and from wrapping. An empty label is a TypeError.
   */
  mac(label: string, message: Uint8Array): Buffer;
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
    mac: (label, message) => macUnder(key, label, message),
    dispose: () => key.zero(),
  };
}

function macUnder(key: SecretBytes, label: string, message: Uint8Array): Buffer {
  if (label.length === 0) throw new TypeError('a MAC label must not be empty');
  const subkey = Buffer.from(
    hkdfSync('sha256', key.expose(), Buffer.alloc(0), Buffer.from(label, 'utf8'), 32),
  );
  try {
    return createHmac('sha256', subkey).update(message).digest();
  } finally {
    subkey.fill(0);
  }
}
