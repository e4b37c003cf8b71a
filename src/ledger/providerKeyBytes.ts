import { systemKeyIdentity } from '../crypto/systemKeyIdentity.js';
import { KeyledgerError } from '../domain/errors.js';
import { formatScope, type KeyId } from '../domain/identities.js';
import type { SecretBytes } from '../secrets/secretBytes.js';
import type { CheckedAnswer } from './providerAnswers.js';

/**
 * What KeymetaAdmin does with the key bytes a provider's answer carries before and after deciding:
 * refuse a recorded system key offered as a data key, and hold the bytes only for the work that
 * wraps them, zeroing them whatever happens. Apart from the admin operations so that every one of
 * them handles key bytes the same way, and the rules about bytes sit in one short file.
 */

/**
 * A key whose identity as a system key (version 2, or its checksum: version 1) is a recorded
 * system key's identity is that system key: serving it as a DEK would let data encryption use
 * (and rewraps expose) the key that wraps every other key. The provider cannot always tell (a
 * keystore forgets retired STK aliases); the ledger can.
 */
export function notASystemKey(
  answer: CheckedAnswer | null,
  systemKeys: readonly { readonly identity: string }[],
): CheckedAnswer | null {
  if (answer === null) return null;
  const checksum = answer.facts.key?.checksum;
  const names = [checksum, answer.key === null ? null : systemKeyIdentity(answer.key)];
  if (systemKeys.some((k) => names.includes(k.identity))) {
    answer.key?.zero();
    throw new KeyledgerError(
      'ERR_PROVIDER_INVALID_ANSWER',
      'the provider offered a system key as a data key',
      {
        scope: formatScope(answer.facts.scope),
      },
    );
  }
  return answer;
}

/** Runs `work` with the provider's key bytes at hand by key id, and zeroes them whatever happens. */
export async function withKeys<T>(
  answer: CheckedAnswer | null,
  work: (keys: ReadonlyMap<KeyId, SecretBytes>) => Promise<T>,
): Promise<T> {
  const keys = new Map<KeyId, SecretBytes>();
  try {
    if (answer?.key && answer.facts.key) keys.set(answer.facts.key.keyId, answer.key);
    return await work(keys);
  } finally {
    answer?.key?.zero();
  }
}
