import { checkRefreshAnswer } from '../domain/decideRefresh.js';
import { isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import { formatScope, type KeyId, type KeyScope } from '../domain/identities.js';
import type { KeyFacts } from '../domain/keyFacts.js';
import type { ManagedKey, ScopeState } from '../domain/scopeState.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { KeyMaterialStreams } from './keyMaterialStreams.js';
import { checkProviderAnswer } from './providerAnswers.js';

/**
 * The provider side of refresh-managed-keys: asking the provider about each live key of a scope,
 * one at a time, and the error that says some of them failed after the others' answers were
 * recorded. Apart from KeymetaAdmin, which decides and records the answers like every other admin
 * call: this part is the only one that collects answers and failures key by key instead of
 * stopping at the first.
 */

/** What the provider answered about each key it could answer for, and what went wrong with the rest. */
export interface RefreshAnswers {
  readonly answers: Map<KeyId, KeyFacts>;
  readonly failures: unknown[];
}

/** Asks the provider about every key; a failing key does not stop the others. */
export async function askAboutKeys(
  provider: ManagedKeyProvider,
  materials: KeyMaterialStreams,
  state: ScopeState,
  keys: readonly ManagedKey[],
): Promise<RefreshAnswers> {
  const answers = new Map<KeyId, KeyFacts>();
  const failures: unknown[] = [];
  for (const key of keys) {
    try {
      answers.set(key.keyId, await askAbout(provider, materials, state, key));
    } catch (error) {
      failures.push(error);
    }
  }
  return { answers, failures };
}

async function askAbout(
  provider: ManagedKeyProvider,
  materials: KeyMaterialStreams,
  state: ScopeState,
  key: ManagedKey,
): Promise<KeyFacts> {
  let raw: Awaited<ReturnType<ManagedKeyProvider['unwrapKey']>>;
  try {
    raw = await provider.unwrapKey(key.metadata, await materials.latest(key));
  } catch (error) {
    if (isKeyledgerError(error)) throw error;
    throw new KeyledgerError(
      'ERR_PROVIDER_FAILED',
      `provider failed on key ${key.metadataHash}`,
      { scope: formatScope(state.scope), metadataHash: key.metadataHash },
      { cause: error },
    );
  }
  const answer = checkProviderAnswer(raw);
  answer?.key?.zero();
  if (answer === null) {
    throw new KeyledgerError('ERR_PROVIDER_NO_KEY', `provider has no answer for key ${key.metadataHash}`, {
      scope: formatScope(state.scope),
      metadataHash: key.metadataHash,
    });
  }
  return checkRefreshAnswer(state, key, answer.facts);
}

/**
 * ERR_REFRESH_INCOMPLETE for a refresh of `planned` keys of which `failures` failed, once the
 * answers that did come were recorded at `position`.
 */
export function refreshIncomplete(
  scope: KeyScope,
  failures: readonly unknown[],
  planned: number,
  position: bigint | null,
): KeyledgerError {
  const [first] = failures;
  // Its own code, not the first failure's: the answers that did come were recorded, so this is
  // never "bad input, nothing written" whatever went wrong with one key.
  return new KeyledgerError(
    'ERR_REFRESH_INCOMPLETE',
    `refresh of ${formatScope(scope)}: ${failures.length} of ${planned} keys failed; first: ${(first as Error).message}`,
    {
      scope: formatScope(scope),
      failedKeys: failures.length,
      firstCode: isKeyledgerError(first) ? first.code : 'ERR_PROVIDER_FAILED',
      position: position?.toString() ?? null,
    },
    { cause: first },
  );
}
