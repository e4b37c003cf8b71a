import { createHmac } from 'node:crypto';
import type { SecretBytes } from '../secrets/secretBytes.js';

/**
 * The HMAC message of a system key's identity (version 2). It differs from the key checksum's
 * ("keyledger-kcv"), so the checksum published for a data key never equals the identity that key
 * would have as a system key: a recorded STK identity cannot be copied from `show-key-status`.
 */
export const STK_IDENTITY_LABEL = 'keyledger-stk-identity-v2';

/**
 * A system key's identity: hex(HMAC-SHA256(key = the STK, message = "keyledger-stk-identity-v2"))
 * first 8 bytes, 16 hex characters. Ledgers written before version 2 recorded the STK's key
 * checksum instead (`keyChecksum`); those identities are still matched (SystemKeyHandle.bind).
 * docs/formats.md.
 */
export function systemKeyIdentity(stk: SecretBytes): string {
  return createHmac('sha256', stk.expose())
    .update(STK_IDENTITY_LABEL)
    .digest()
    .subarray(0, 8)
    .toString('hex');
}
