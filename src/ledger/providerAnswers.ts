import { keyChecksum } from '../crypto/keyChecksum.js';
import { KeyledgerError } from '../domain/errors.js';
import { type KeyScope, parseCustodian, parseNamespace } from '../domain/identities.js';
import { keyIdOf, metadataHashOf } from '../domain/keyDigests.js';
import type { KeyFacts } from '../domain/keyFacts.js';
import { PROVIDER_KEY_STATES } from '../domain/keyState.js';
import type { ManagedKeyData } from '../providers/managedKeyProvider.js';
import { SecretBytes } from '../secrets/secretBytes.js';

/** A provider's answer once checked: the facts the decider gets, and the key bytes (caller zeroes). */
export interface CheckedAnswer {
  readonly facts: KeyFacts;
  readonly key: SecretBytes | null;
}

const DEK_BYTES = 32;
const MAX_METADATA_CHARS = 4096;

function invalid(message: string, scope?: KeyScope): never {
  throw new KeyledgerError('ERR_PROVIDER_INVALID_ANSWER', `provider answer: ${message}`, {
    scope: scope === undefined ? undefined : `${scope.custodian}:${scope.namespace}`,
  });
}

/**
 * Providers are plug-ins and their answers are not trusted: everything the ledger will persist is
 * checked here (identities, state, metadata, key length) before the decider sees it. Scope
 * mismatches are left to the decider, which knows what was asked.
 */
export function checkProviderAnswer(answer: ManagedKeyData | null): CheckedAnswer | null {
  if (answer === null) return null;
  let scope: KeyScope;
  try {
    scope = { custodian: parseCustodian(answer.custodian), namespace: parseNamespace(answer.namespace) };
  } catch (error) {
    answer.key?.zero();
    return invalid(`bad scope (${(error as Error).message})`);
  }
  if (!PROVIDER_KEY_STATES.includes(answer.state)) {
    answer.key?.zero();
    invalid(`unknown state ${String(answer.state)}`, scope);
  }
  if (
    answer.metadata !== null &&
    (typeof answer.metadata !== 'string' ||
      answer.metadata.length === 0 ||
      answer.metadata.length > MAX_METADATA_CHARS)
  ) {
    answer.key?.zero();
    invalid('metadata must be a non-empty string of at most 4096 characters', scope);
  }
  const usable = answer.state === 'ACTIVE' || answer.state === 'INACTIVE';
  if (!usable) {
    // A provider that calls a key unusable has no business handing out its bytes.
    answer.key?.zero();
    const key = answer.metadata === null ? null : { ...names(scope, answer.metadata), checksum: null };
    return { facts: { scope, state: answer.state, key }, key: null };
  }
  if (answer.metadata === null) invalid(`${answer.state} answer without metadata`, scope);
  if (!(answer.key instanceof SecretBytes) || answer.key.length !== DEK_BYTES) {
    if (answer.key instanceof SecretBytes) answer.key.zero();
    invalid(`${answer.state} answer without a 256-bit key`, scope);
  }
  const key = answer.key;
  return {
    facts: {
      scope,
      state: answer.state,
      key: { ...names(scope, answer.metadata), checksum: keyChecksum(key) },
    },
    key,
  };
}

function names(scope: KeyScope, metadata: string) {
  const metadataHash = metadataHashOf(metadata);
  return { keyId: keyIdOf(scope, metadataHash), metadata, metadataHash };
}
