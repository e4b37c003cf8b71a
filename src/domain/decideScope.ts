import { type DestroyCommand, decideDestroy } from './decideDestroy.js';
import { decideImport, type ImportCommand } from './decideImport.js';
import { KeyledgerError } from './errors.js';
import type { KeyRecord } from './eventFields.js';
import type { DomainEvent, EventOf, ScopeEvent } from './events.js';
import { formatScope, type KeyId, type KeyScope, type MetadataHash, sameScope } from './identities.js';
import { assertTransition, type KeyState, type ProviderKeyState } from './keyState.js';
import { activeKey, findKeyByHash, type ManagedKey, type ScopeState } from './scopeState.js';

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

export type ScopeCommand =
  | { readonly type: 'EnableKeyManagement'; readonly answer: KeyFacts | null; readonly stkIdentity: string }
  | { readonly type: 'RotateManagedKey'; readonly answer: KeyFacts | null; readonly stkIdentity: string }
  | { readonly type: 'SetManagedKey'; readonly answer: KeyFacts; readonly stkIdentity: string }
  | { readonly type: 'DisableKeyManagement' }
  | { readonly type: 'DisableManagedKey'; readonly metadataHash: MetadataHash }
  | { readonly type: 'EnableManagedKey'; readonly metadataHash: MetadataHash }
  | { readonly type: 'RefreshManagedKeys'; readonly answers: ReadonlyMap<KeyId, KeyFacts> }
  | ImportCommand
  | DestroyCommand;

/** Enabling an already enabled scope (marker ACTIVE with an ACTIVE key) is a no-op: no provider call. */
export function enableIsNoop(state: ScopeState): boolean {
  return state.marker === 'ACTIVE' && activeKey(state) !== null;
}

/** Rotation needs an ACTIVE marker; checked before the provider is asked. */
export function assertCanRotate(state: ScopeState): void {
  if (state.marker !== 'ACTIVE') {
    throw new KeyledgerError(
      'ERR_KEY_MANAGEMENT_NOT_ENABLED',
      `key management is not enabled for ${formatScope(state.scope)}`,
      { scope: formatScope(state.scope), marker: state.marker },
    );
  }
}

/** Set-key is refused on a scope whose management was disabled: enable it first. */
export function assertCanSetKey(state: ScopeState): void {
  if (state.marker === 'DISABLED') {
    throw new KeyledgerError(
      'ERR_KEY_MANAGEMENT_DISABLED',
      `key management is disabled for ${formatScope(state.scope)}; enable it first`,
      { scope: formatScope(state.scope) },
    );
  }
}

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

export function decideScope(state: ScopeState, command: ScopeCommand): ScopeEvent[] {
  switch (command.type) {
    case 'EnableKeyManagement':
      return decideEnable(state, command.answer, command.stkIdentity);
    case 'RotateManagedKey':
      return decideRotate(state, command.answer, command.stkIdentity);
    case 'SetManagedKey':
      return decideSet(state, command.answer, command.stkIdentity);
    case 'DisableKeyManagement':
      return decideDisableManagement(state);
    case 'DisableManagedKey':
      return decideDisableKey(state, command.metadataHash);
    case 'EnableManagedKey':
      return decideReenableKey(state, command.metadataHash);
    case 'RefreshManagedKeys':
      return decideRefresh(state, command.answers);
    case 'ImportManagedKey':
      return decideImport(state, command, (facts) =>
        recordFor(state, checkAnswer(state, facts), command.stkIdentity),
      );
    case 'ScheduleKeyDestruction':
    case 'CancelKeyDestruction':
    case 'DestroyDueKey':
      return decideDestroy(state, command);
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/** The cache-eject event for a scope (recorded on the operations stream, not the scope's). */
export function decideEjectCacheEntry(
  state: ScopeState,
  metadataHash: MetadataHash | null,
): EventOf<'CacheEntryEjected'> {
  const key = metadataHash === null ? null : requireKey(state, metadataHash);
  return {
    type: 'CacheEntryEjected',
    data: { ...state.scope, keyId: key === null ? null : key.keyId },
  };
}

export function decideClearCache(): EventOf<'CacheCleared'> {
  return { type: 'CacheCleared', data: {} };
}

function decideEnable(state: ScopeState, answer: KeyFacts | null, stkIdentity: string): ScopeEvent[] {
  if (enableIsNoop(state)) return [];
  const facts = checkAnswer(state, answer);
  switch (facts.state) {
    case 'ACTIVE': {
      const record = recordFor(state, facts, stkIdentity);
      return [
        {
          type: 'KeyManagementEnabled',
          data: { ...state.scope, key: record, previousKeyId: state.activeKeyId },
        },
      ];
    }
    case 'INACTIVE':
      throw new KeyledgerError(
        'ERR_PROVIDER_KEY_NOT_ACTIVE',
        `provider returned an INACTIVE key for ${formatScope(state.scope)}, expected ACTIVE`,
        { scope: formatScope(state.scope), providerState: facts.state },
      );
    case 'FAILED':
    case 'DISABLED':
      // A retry that meets the same answer changes nothing: periodic refreshes of a FAILED scope
      // would otherwise grow its stream by one event each.
      if (state.marker === facts.state) return [];
      return [
        {
          type: 'KeyManagementEnableFailed',
          data: { ...state.scope, marker: facts.state, providerState: facts.state },
        },
      ];
    default: {
      const unreachable: never = facts.state;
      return unreachable;
    }
  }
}

function decideRotate(state: ScopeState, answer: KeyFacts | null, stkIdentity: string): ScopeEvent[] {
  assertCanRotate(state);
  // A missing or non-ACTIVE answer leaves the current key in place: rotation is best-effort.
  if (answer === null) return [];
  const facts = checkAnswer(state, answer);
  if (facts.state !== 'ACTIVE' || facts.key === null) return [];
  // recordFor checks a known key's bytes, the current ACTIVE one's included, before "same key".
  const record = recordFor(state, facts, stkIdentity);
  if (record.keyId === state.activeKeyId) return [];
  return [
    { type: 'ManagedKeyRotated', data: { ...state.scope, key: record, previousKeyId: state.activeKeyId } },
  ];
}

function decideSet(state: ScopeState, answer: KeyFacts, stkIdentity: string): ScopeEvent[] {
  assertCanSetKey(state);
  const facts = checkAnswer(state, answer);
  if (facts.state !== 'ACTIVE' && facts.state !== 'INACTIVE') {
    throw new KeyledgerError(
      'ERR_PROVIDER_KEY_NOT_ACTIVE',
      `provider reports the key as ${facts.state}; only a usable key can become ACTIVE`,
      { scope: formatScope(state.scope), providerState: facts.state },
    );
  }
  const record = recordFor(state, facts, stkIdentity);
  if (record.keyId === state.activeKeyId) return [];
  return [{ type: 'ManagedKeySet', data: { ...state.scope, key: record, previousKeyId: state.activeKeyId } }];
}

function decideDisableManagement(state: ScopeState): ScopeEvent[] {
  const deactivated = [...state.keys.values()].filter((k) => k.state === 'ACTIVE').map((k) => k.keyId);
  if (state.marker === 'DISABLED' && deactivated.length === 0) return [];
  return [{ type: 'KeyManagementDisabled', data: { ...state.scope, deactivatedKeyIds: deactivated } }];
}

function decideDisableKey(state: ScopeState, hash: MetadataHash): ScopeEvent[] {
  const key = requireKey(state, hash);
  if (key.state === 'DISABLED' || key.state === 'DESTROYED') {
    throw new KeyledgerError(
      'ERR_KEY_ALREADY_DISABLED',
      `key ${hash} of ${formatScope(state.scope)} is already ${key.state}`,
      {
        scope: formatScope(state.scope),
        metadataHash: hash,
        state: key.state,
      },
    );
  }
  assertTransition(key.state, 'DISABLED', key.keyId);
  return [
    { type: 'ManagedKeyDisabled', data: { ...state.scope, keyId: key.keyId, previousState: key.state } },
  ];
}

function decideReenableKey(state: ScopeState, hash: MetadataHash): ScopeEvent[] {
  const key = requireKey(state, hash);
  if (key.state !== 'DISABLED') {
    throw new KeyledgerError(
      'ERR_KEY_NOT_DISABLED',
      `key ${hash} of ${formatScope(state.scope)} is ${key.state}, not DISABLED`,
      {
        scope: formatScope(state.scope),
        metadataHash: hash,
        state: key.state,
      },
    );
  }
  return [{ type: 'ManagedKeyReenabled', data: { ...state.scope, keyId: key.keyId } }];
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
function decideRefresh(state: ScopeState, answers: ReadonlyMap<KeyId, KeyFacts>): ScopeEvent[] {
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

function requireKey(state: ScopeState, hash: MetadataHash): ManagedKey {
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
function checkAnswer(state: ScopeState, answer: KeyFacts | null): KeyFacts {
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
function recordFor(state: ScopeState, facts: KeyFacts, stkIdentity: string): KeyRecord {
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

/** Keys that enter the ledger with these events and so need their wrapped material written first. */
export function newKeysIn(state: ScopeState, events: readonly DomainEvent[]): KeyRecord[] {
  const records: KeyRecord[] = [];
  for (const event of events) {
    if (
      (event.type === 'KeyManagementEnabled' ||
        event.type === 'ManagedKeyRotated' ||
        event.type === 'ManagedKeySet' ||
        event.type === 'ManagedKeyImported') &&
      !state.keys.has(event.data.key.keyId)
    ) {
      records.push(event.data.key);
    }
  }
  return records;
}
