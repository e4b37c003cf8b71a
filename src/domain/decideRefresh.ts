import { KeyledgerError } from './errors.js';
import type { ScopeEvent } from './events.js';
import { formatScope, type KeyId } from './identities.js';
import { checkAnswer, type KeyFacts } from './keyFacts.js';
import { assertTransition, type KeyState, type ProviderKeyState } from './keyState.js';
import type { ManagedKey, ScopeState } from './scopeState.js';

/**
 * refresh-managed-keys' rules: which keys of a scope a refresh asks the provider about, which
 * answers it may use, and how a scope follows them (never picking a new ACTIVE key). Apart from
 * decideScope.ts, which dispatches a RefreshManagedKeys command here, because refresh is the one
 * decision that follows the provider's view of keys the ledger already has instead of adopting a key.
 */

export type RefreshPlan =
  | { readonly kind: 'skip' }
  | { readonly kind: 'retry-enable' }
  | { readonly kind: 'refresh'; readonly keys: readonly ManagedKey[] };

/** Refresh skips a DISABLED scope, retries enable for a FAILED one, else asks about each live key. */
export function planRefresh(state: ScopeState): RefreshPlan {
  if (state.marker === 'DISABLED') return { kind: 'skip' };
  if (state.marker === 'FAILED') return { kind: 'retry-enable' };
  const keys = [...state.keys.values()].filter((k) => k.state === 'ACTIVE' || k.state === 'INACTIVE');
  return { kind: 'refresh', keys };
}

/**
 * Follows the provider's view of each key. DISABLED is followed at once; FAILED is transient (state
 * kept, refresh time recorded); ACTIVE → INACTIVE is followed. INACTIVE → ACTIVE is followed only to
 * restore the key an earlier refresh demoted (state.providerDemotedKeyId) while the scope has no
 * ACTIVE key: a refresh never picks a new ACTIVE key, so it cannot undo a rotation, bring back a
 * key an admin disabled the active key to get rid of, or leave two ACTIVE keys (a provider that calls
 * every key it can still serve ACTIVE would otherwise do all three). Choosing a key is rotate/set.
 * Answers must have passed checkRefreshAnswer; keys without an answer are left alone.
 */
export function decideRefresh(state: ScopeState, answers: ReadonlyMap<KeyId, KeyFacts>): ScopeEvent[] {
  const plan = planRefresh(state);
  if (plan.kind !== 'refresh') return [];
  const answered = plan.keys.filter((k) => answers.has(k.keyId));
  const target = new Map<KeyId, KeyState>();
  for (const key of answered) target.set(key.keyId, followProvider(key.state, providerState(answers, key)));
  const hasActive = plan.keys.some((k) => (target.get(k.keyId) ?? k.state) === 'ACTIVE');
  const restorable = state.providerDemotedKeyId;
  const restored = answered.find((k) => k.keyId === restorable);
  if (!hasActive && restored?.state === 'INACTIVE' && providerState(answers, restored) === 'ACTIVE') {
    target.set(restored.keyId, 'ACTIVE');
  }
  return answered.map((key) => {
    const next = target.get(key.keyId) ?? key.state;
    if (next !== key.state) assertTransition(key.state, next, key.keyId);
    return {
      type: 'ManagedKeyRefreshed',
      data: {
        ...state.scope,
        keyId: key.keyId,
        previousState: key.state,
        state: next,
        providerState: providerState(answers, key),
      },
    };
  });
}

function providerState(answers: ReadonlyMap<KeyId, KeyFacts>, key: ManagedKey): ProviderKeyState {
  return answers.get(key.keyId)?.state ?? 'FAILED';
}

/**
 * Checks the provider's answer about one known key before a refresh may use it: same scope, same
 * key (metadata), same bytes (checksum) when it supplied them. The service reports a failing key
 * and goes on with the others.
 */
export function checkRefreshAnswer(state: ScopeState, key: ManagedKey, answer: KeyFacts): KeyFacts {
  const facts = checkAnswer(state, answer);
  if (facts.key !== null && facts.key.keyId !== key.keyId) {
    throw new KeyledgerError(
      'ERR_PROVIDER_INVALID_ANSWER',
      `provider answered about another key than ${key.metadataHash}`,
      {
        scope: formatScope(state.scope),
        metadataHash: key.metadataHash,
      },
    );
  }
  if (facts.key?.checksum != null && facts.key.checksum !== key.checksum) {
    throw new KeyledgerError(
      'ERR_PROVIDER_INVALID_ANSWER',
      `provider returned different key bytes for key ${key.metadataHash} (checksum mismatch)`,
      { scope: formatScope(state.scope), metadataHash: key.metadataHash },
    );
  }
  return facts;
}

function followProvider(current: KeyState, provider: ProviderKeyState): KeyState {
  switch (provider) {
    case 'FAILED':
      return current;
    case 'DISABLED':
      return 'DISABLED';
    case 'INACTIVE':
      return 'INACTIVE';
    case 'ACTIVE':
      // Promotion is decided afterwards against the whole scope.
      return current;
    default: {
      const unreachable: never = provider;
      return unreachable;
    }
  }
}
