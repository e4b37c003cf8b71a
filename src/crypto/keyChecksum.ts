import { createHmac } from 'node:crypto';
import type { SecretBytes } from '../secrets/secretBytes.js';

/**
 * The key check value shown for a key: hex(HMAC-SHA256(key = the key bytes, message =
 * "keyledger-kcv")), first 8 bytes. It identifies a key without revealing anything usable about it
 * (HBase's CRC32C is linear in the key bits, so it leaks; this is a PRF output). docs/formats.md.
 */
export function keyChecksum(key: SecretBytes): string {
  return createHmac('sha256', key.expose()).update('keyledger-kcv').digest().subarray(0, 8).toString('hex');
}
