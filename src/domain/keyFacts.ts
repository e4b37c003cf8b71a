import { KeyledgerError } from './errors.js';
import type { KeyRecord } from './eventFields.js';
import { formatScope, type KeyId, type KeyScope, type MetadataHash, sameScope } from './identities.js';
import { assertTransition, type ProviderKeyState } from './keyState.js';
import { findKeyByHash, type ManagedKey, type ScopeState } from './scopeState.js';

/**
 * Provider answers as the deciders take them (KeyFacts), and the checks every decision about a
 * scope's keys runs before it uses one: the answer names the scope asked about and is complete,
 * a known key comes back with the same bytes, a key about to become ACTIVE may, a named key exists.
 * Apart from decideScope.ts because enable, rotate, set, refresh (decideRefresh.ts) and import
 * (decideImport.ts) all share them, and a rule about answers is then stated once.
 */

/**
 * What a provider said about a key, checked and reduced to facts (no bytes): the application
 * service asks the provider, validates the answer's shape, and hands the facts to the decider,
 * which applies the rules of SEMANTICS.md without any I/O.
 */
export interface KeyFacts {
  readonly scope: KeyScope;
  readonly state: ProviderKeyState;
  /** Null when the provider has no key to name (FAILED). */
  readonly key: {
    readonly keyId: KeyId;
    readonly metadata: string;
    readonly metadataHash: MetadataHash;
    /** Null when the provider named the key but could not supply its bytes (DISABLED). */
    readonly checksum: string | null;
  } | null;
}

/** The scope's key with this metadata hash; ERR_KEY_NOT_FOUND if it has none. */
export function requireKey(state: ScopeState, hash: MetadataHash): ManagedKey {
  const key = findKeyByHash(state, hash);
  if (key === null) {
    throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no key ${hash} in ${formatScope(state.scope)}`, {
      scope: formatScope(state.scope),
      metadataHash: hash,
    });
  }
  return key;
}

/** Provider answers are not trusted: they must name the scope asked about and be complete. */
export function checkAnswer(state: ScopeState, answer: KeyFacts | null): KeyFacts {
  if (answer === null) {
    throw new KeyledgerError(
      'ERR_PROVIDER_NO_KEY',
      `provider returned no key for ${formatScope(state.scope)}`,
      {
        scope: formatScope(state.scope),
      },
    );
  }
  if (!sameScope(answer.scope, state.scope)) {
    throw new KeyledgerError(
      'ERR_PROVIDER_WRONG_SCOPE',
      `provider returned a key of ${formatScope(answer.scope)} when asked for ${formatScope(state.scope)}`,
      { scope: formatScope(state.scope), answeredScope: formatScope(answer.scope) },
    );
  }
  const usable = answer.state === 'ACTIVE' || answer.state === 'INACTIVE';
  if (usable && (answer.key === null || answer.key.checksum === null)) {
    throw new KeyledgerError(
      'ERR_PROVIDER_INVALID_ANSWER',
      `provider answered ${answer.state} without key material`,
      {
        scope: formatScope(state.scope),
      },
    );
  }
  return answer;
}

/** The record of the answered key: the known one if the scope has it, else a new one. */
export function recordFor(state: ScopeState, facts: KeyFacts, stkIdentity: string): KeyRecord {
  const key = facts.key;
  if (key === null || key.checksum === null) {
    throw new KeyledgerError('ERR_PROVIDER_INVALID_ANSWER', 'provider answer names no key', {
      scope: formatScope(state.scope),
    });
  }
  const known = state.keys.get(key.keyId);
  if (known !== undefined) {
    if (known.checksum !== key.checksum) {
      throw new KeyledgerError(
        'ERR_PROVIDER_INVALID_ANSWER',
        `provider returned different key bytes under the metadata of known key ${key.metadataHash}`,
        { scope: formatScope(state.scope), metadataHash: key.metadataHash },
      );
    }
    if (known.state !== 'ACTIVE') assertUsableForActivation(state, known);
    const { state: _s, createdAt: _c, refreshedAt: _r, updatedAt: _u, destruction: _d, ...record } = known;
    return record;
  }
  return {
    keyId: key.keyId,
    metadata: key.metadata,
    metadataHash: key.metadataHash,
    checksum: key.checksum,
    stkIdentity: stkIdentity,
  };
}

/** A known key may become ACTIVE again only if it is INACTIVE and not scheduled for destruction. */
export function assertUsableForActivation(state: ScopeState, key: ManagedKey): void {
  if (key.state === 'DESTROYED') {
    throw new KeyledgerError(
      'ERR_KEY_DESTROYED',
      `key ${key.metadataHash} of ${formatScope(state.scope)} is DESTROYED and can never be used again`,
      { scope: formatScope(state.scope), metadataHash: key.metadataHash },
    );
  }
  if (key.state === 'DISABLED') {
    throw new KeyledgerError(
      'ERR_KEY_DISABLED',
      `key ${key.metadataHash} of ${formatScope(state.scope)} is ${key.state}; re-enable it before it can become ACTIVE`,
      { scope: formatScope(state.scope), metadataHash: key.metadataHash, state: key.state },
    );
  }
  if (key.destruction !== null) {
    throw new KeyledgerError(
      'ERR_KEY_DESTRUCTION_SCHEDULED',
      `key ${key.metadataHash} of ${formatScope(state.scope)} is scheduled for destruction at ${key.destruction.dueAt}; cancel the destruction before it can become ACTIVE`,
      { scope: formatScope(state.scope), metadataHash: key.metadataHash, dueAt: key.destruction.dueAt },
    );
  }
  assertTransition(key.state, 'ACTIVE', key.keyId);
}
