import { type DestroyCommand, decideDestroy } from './decideDestroy.js';
import { decideImport, type ImportCommand } from './decideImport.js';
import { decideRefresh } from './decideRefresh.js';
import { KeyledgerError } from './errors.js';
import type { KeyRecord } from './eventFields.js';
import type { DomainEvent, EventOf, ScopeEvent } from './events.js';
import { formatScope, type KeyId, type MetadataHash } from './identities.js';
import { checkAnswer, type KeyFacts, recordFor, requireKey } from './keyFacts.js';
import { assertTransition } from './keyState.js';
import { activeKey, type ScopeState } from './scopeState.js';

/**
 * The decider of a scope's key lifecycle (SEMANTICS.md and keyledger's additions): one command and
 * the scope's state in, the events to record out, no I/O. Enable, rotate, set, disable and the
 * cache ejections are decided here; refresh (decideRefresh.ts), import (decideImport.ts) and
 * destruction (decideDestroy.ts) have files of their own and are dispatched from decideScope, and
 * the checks on provider answers they all share are in keyFacts.ts.
 */

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
