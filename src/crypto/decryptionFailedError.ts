import { KeyledgerError } from '../domain/errors.js';

/**
 * The one error every decryption failure surfaces as: unknown, DISABLED, DESTROYED or FAILED key,
 * wrong AAD, tampering, truncation, garbage. It says nothing more (no cause, no details), so a
 * caller — or an attacker probing with crafted ciphertexts — cannot tell the cases apart.
 */
export class DecryptionFailedError extends KeyledgerError {
  constructor() {
    super('ERR_DECRYPTION_FAILED', 'decryption failed', {});
    this.name = 'DecryptionFailedError';
  }
}
