import { createHmac, hkdfSync } from 'node:crypto';
import type { SecretBytes } from '../secrets/secretBytes.js';
import { DEK_WRAP_LABEL, type DekBinding, unwrapDek, wrapDek } from './dekWrap.js';
import { keyChecksum } from './keyChecksum.js';
import { systemKeyIdentity } from './systemKeyIdentity.js';

/**
 * A system key as the ledger uses it: it wraps and unwraps DEKs and MACs checkpoints. A keystore's
 * STK does this in process (softwareSystemKey); an HSM's does it inside the token, so the bytes
 * never have to leave the provider.
 */
export interface SystemKeyHandle {
  /**
   * The identity this handle wraps under and reports: the STK's version-2 identity
   * (systemKeyIdentity), or, for a handle from `bind`, the identity the ledger recorded for it.
   */
  readonly identity: string;
  /** The provider's metadata naming this STK (e.g. the keystore alias). */
  readonly metadata: string;
  /** Every identity that names this STK: its version-2 identity, then its version-1 one if any. */
  readonly identities: readonly string[];
  /**
   * True when `recorded` names this STK: its version-2 identity, or the version-1 identity (the
   * STK's key checksum) that ledgers written before identity version 2 recorded.
   */
  names(recorded: string): boolean;
  /**
   * The same STK under the identity a ledger recorded for it (see `names`), or null when it is not
   * this STK. The returned handle takes over the key: dispose one of the two, not both.
   */
  bind(recorded: string): SystemKeyHandle | null;
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
   * these MACs apart from each other and from wrapping (whose key is derived with its own label,
   * dekWrap.ts). An empty label, or the wrapping label, is a TypeError.
   */
  mac(label: string, message: Uint8Array): Buffer;
  /** Zeroes any key bytes the handle holds. */
  dispose(): void;
}

/** A system key whose bytes the process holds (keystore providers). Takes ownership of `key`. */
export function softwareSystemKey(metadata: string, key: SecretBytes): SystemKeyHandle {
  const current = systemKeyIdentity(key);
  const legacy = keyChecksum(key);
  const handle = (identity: string): SystemKeyHandle => ({
    identity,
    metadata,
    identities: [current, legacy],
    names: (recorded) => recorded === current || recorded === legacy,
    bind: (recorded) => (recorded === current || recorded === legacy ? handle(recorded) : null),
    wrap: (dek, binding) => wrapDek(key, dek, { ...binding, stkIdentity: identity }),
    // A version-1 wrap was bound to the identity of its time, the STK's checksum.
    unwrap: (wrapped, binding, expectedChecksum) =>
      unwrapDek(key, wrapped, { ...binding, stkIdentity: identity }, expectedChecksum, legacy),
    mac: (label, message) => macUnder(key, label, message),
    dispose: () => key.zero(),
  });
  return handle(current);
}

function macUnder(key: SecretBytes, label: string, message: Uint8Array): Buffer {
  if (label.length === 0) throw new TypeError('a MAC label must not be empty');
  if (label === DEK_WRAP_LABEL) throw new TypeError('the DEK wrapping label is not a MAC label');
  const subkey = Buffer.from(
    hkdfSync('sha256', key.expose(), Buffer.alloc(0), Buffer.from(label, 'utf8'), 32),
  );
  try {
    return createHmac('sha256', subkey).update(message).digest();
  } finally {
    subkey.fill(0);
  }
}
