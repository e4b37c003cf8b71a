/**
 * Builders for the domain decider's given/when/then tests: keys are named by a short test name
 * ("k1", "k2", …) and everything the ledger derives from a key (metadata, metadata hash, key id,
 * checksum) is computed from that name and the scope, the same way the ledger computes it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ScopeCommand } from '../../src/domain/decideScope.js';
import { type ErrorCode, KeyledgerError } from '../../src/domain/errors.js';
import type { KeyRecord } from '../../src/domain/eventFields.js';
import {
  type DomainEvent,
  type EventOf,
  type LedgerEvent,
  parseLedgerEvent,
  SCHEMA_VERSION,
  type ScopeEvent,
} from '../../src/domain/events.js';
import { type KeyId, type KeyScope, keyScope, type MetadataHash } from '../../src/domain/identities.js';
import { keyIdOf, metadataHashOf } from '../../src/domain/keyDigests.js';
import type { KeyFacts } from '../../src/domain/keyFacts.js';
import type { KeyState, MarkerState, ProviderKeyState } from '../../src/domain/keyState.js';
import { emptyScopeState, evolveScope, type ScopeState } from '../../src/domain/scopeState.js';

/** The system key identity new keys are recorded under, unless a test says otherwise. */
export const STK = '0123456789abcdef';
export const OTHER_STK = 'fedcba9876543210';

export const SCOPE: KeyScope = keyScope('Y3VzdDE=', 'table1/cf1');
export const OTHER_SCOPE: KeyScope = keyScope('Y3VzdDI=', 'table1/cf1');

/** The n-th event's time: a minute apart, from 2025-01-01. */
export function at(n: number): string {
  return new Date(Date.UTC(2025, 0, 1) + n * 60_000).toISOString();
}

/** HBase keystore-provider style metadata for the key `name` of `scope`. */
export function metadataFor(scope: KeyScope, name: string): string {
  return JSON.stringify({ KeyAlias: name, KeyCustodian: scope.custodian, KeyNamespace: scope.namespace });
}

export function hashFor(scope: KeyScope, name: string): MetadataHash {
  return metadataHashOf(metadataFor(scope, name));
}

export function keyIdFor(scope: KeyScope, name: string): KeyId {
  return keyIdOf(scope, hashFor(scope, name));
}

/** A 16-hex checksum for the bytes of key `name`; another `variant` stands for other bytes. */
export function checksumFor(name: string, variant = ''): string {
  return createHash('sha256').update(`bytes:${name}:${variant}`).digest('hex').slice(0, 16);
}

export function recordFor(scope: KeyScope, name: string, stkIdentity = STK): KeyRecord {
  const metadataHash = hashFor(scope, name);
  return {
    keyId: keyIdOf(scope, metadataHash),
    metadata: metadataFor(scope, name),
    metadataHash,
    checksum: checksumFor(name),
    stkIdentity,
  };
}

// ---------------------------------------------------------------------------------------------
// Provider answers (KeyFacts)

export interface AnswerOptions {
  /** Overrides the checksum; null for an answer that names the key without its bytes. */
  readonly checksum?: string | null;
  /** The scope the answer claims to be about (defaults to the scope asked about). */
  readonly answeredScope?: KeyScope;
}

/** The provider's answer naming key `name` of `scope` in `state`. */
export function answer(
  scope: KeyScope,
  name: string,
  state: ProviderKeyState,
  options: AnswerOptions = {},
): KeyFacts {
  const metadataHash = hashFor(scope, name);
  const defaultChecksum = state === 'ACTIVE' || state === 'INACTIVE' ? checksumFor(name) : null;
  return {
    scope: options.answeredScope ?? scope,
    state,
    key: {
      keyId: keyIdOf(scope, metadataHash),
      metadata: metadataFor(scope, name),
      metadataHash,
      checksum: options.checksum === undefined ? defaultChecksum : options.checksum,
    },
  };
}

export function activeAnswer(scope: KeyScope, name: string, options: AnswerOptions = {}): KeyFacts {
  return answer(scope, name, 'ACTIVE', options);
}

export function inactiveAnswer(scope: KeyScope, name: string, options: AnswerOptions = {}): KeyFacts {
  return answer(scope, name, 'INACTIVE', options);
}

/** The provider names the key but cannot supply its bytes. */
export function disabledAnswer(scope: KeyScope, name: string): KeyFacts {
  return answer(scope, name, 'DISABLED');
}

/** The provider has no key to name. */
export function failedAnswer(scope: KeyScope): KeyFacts {
  return { scope, state: 'FAILED', key: null };
}

// ---------------------------------------------------------------------------------------------
// Commands

export const when = {
  enable: (answer: KeyFacts | null, stkIdentity = STK): ScopeCommand => ({
    type: 'EnableKeyManagement',
    answer,
    stkIdentity,
  }),
  rotate: (answer: KeyFacts | null, stkIdentity = STK): ScopeCommand => ({
    type: 'RotateManagedKey',
    answer,
    stkIdentity,
  }),
  set: (answer: KeyFacts, stkIdentity = STK): ScopeCommand => ({
    type: 'SetManagedKey',
    answer,
    stkIdentity,
  }),
  disableManagement: (): ScopeCommand => ({ type: 'DisableKeyManagement' }),
  disableKey: (metadataHash: MetadataHash): ScopeCommand => ({ type: 'DisableManagedKey', metadataHash }),
  enableKey: (metadataHash: MetadataHash): ScopeCommand => ({ type: 'EnableManagedKey', metadataHash }),
  /** The provider's answers by the test name of the key asked about (as the service keys them). */
  refresh: (scope: KeyScope, answers: Readonly<Record<string, KeyFacts>>): ScopeCommand => ({
    type: 'RefreshManagedKeys',
    answers: refreshAnswers(scope, answers),
  }),
};

export function refreshAnswers(
  scope: KeyScope,
  answers: Readonly<Record<string, KeyFacts>>,
): ReadonlyMap<KeyId, KeyFacts> {
  return new Map(Object.entries(answers).map(([name, facts]) => [keyIdFor(scope, name), facts]));
}

// ---------------------------------------------------------------------------------------------
// Events (the "given" side)

function idOrNull(scope: KeyScope, name: string | null): KeyId | null {
  return name === null ? null : keyIdFor(scope, name);
}

export function enabled(
  scope: KeyScope,
  name: string,
  previous: string | null = null,
  stkIdentity = STK,
): EventOf<'KeyManagementEnabled'> {
  return {
    type: 'KeyManagementEnabled',
    data: { ...scope, key: recordFor(scope, name, stkIdentity), previousKeyId: idOrNull(scope, previous) },
  };
}

export function enableFailed(
  scope: KeyScope,
  marker: 'FAILED' | 'DISABLED',
  providerState: ProviderKeyState = marker,
): EventOf<'KeyManagementEnableFailed'> {
  return { type: 'KeyManagementEnableFailed', data: { ...scope, marker, providerState } };
}

export function rotated(
  scope: KeyScope,
  name: string,
  previous: string | null,
  stkIdentity = STK,
): EventOf<'ManagedKeyRotated'> {
  return {
    type: 'ManagedKeyRotated',
    data: { ...scope, key: recordFor(scope, name, stkIdentity), previousKeyId: idOrNull(scope, previous) },
  };
}

export function keySet(
  scope: KeyScope,
  name: string,
  previous: string | null,
  stkIdentity = STK,
): EventOf<'ManagedKeySet'> {
  return {
    type: 'ManagedKeySet',
    data: { ...scope, key: recordFor(scope, name, stkIdentity), previousKeyId: idOrNull(scope, previous) },
  };
}

export function managementDisabled(
  scope: KeyScope,
  ...deactivated: string[]
): EventOf<'KeyManagementDisabled'> {
  return {
    type: 'KeyManagementDisabled',
    data: { ...scope, deactivatedKeyIds: deactivated.map((name) => keyIdFor(scope, name)) },
  };
}

export function keyDisabled(
  scope: KeyScope,
  name: string,
  previousState: KeyState,
): EventOf<'ManagedKeyDisabled'> {
  return { type: 'ManagedKeyDisabled', data: { ...scope, keyId: keyIdFor(scope, name), previousState } };
}

export function keyReenabled(scope: KeyScope, name: string): EventOf<'ManagedKeyReenabled'> {
  return { type: 'ManagedKeyReenabled', data: { ...scope, keyId: keyIdFor(scope, name) } };
}

export function refreshed(
  scope: KeyScope,
  name: string,
  previousState: KeyState,
  state: KeyState,
  providerState: ProviderKeyState,
): EventOf<'ManagedKeyRefreshed'> {
  return {
    type: 'ManagedKeyRefreshed',
    data: { ...scope, keyId: keyIdFor(scope, name), previousState, state, providerState },
  };
}

/** Where and how a stored event sits: its stream, revision and position, and its metadata's. */
export interface StoredAt {
  readonly streamName: string;
  readonly revision: bigint;
  readonly position: bigint;
  readonly correlationId: string;
  readonly occurredAt: string;
}

/**
 * A domain event as it comes back from the store: through the schema (data as JSON), with
 * metadata (actor 'test', no reason, no causation) and the given stream, revision and position.
 */
export function storedEvent(event: DomainEvent, storedAt: StoredAt): LedgerEvent {
  return parseLedgerEvent({
    streamName: storedAt.streamName,
    revision: storedAt.revision,
    position: storedAt.position,
    type: event.type,
    data: JSON.parse(JSON.stringify(event.data)),
    metadata: {
      schemaVersion: SCHEMA_VERSION,
      actor: 'test',
      reason: null,
      correlationId: storedAt.correlationId,
      causationId: null,
      occurredAt: storedAt.occurredAt,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Folding and reading state

/** The scope's state after `events`, the n-th (from 1) folded at `at(n)` with revision n - 1. */
export function givenEvents(scope: KeyScope, ...events: ScopeEvent[]): ScopeState {
  return foldOnto(emptyScopeState(scope), events);
}

/** Folds `events` onto `state`, continuing its revisions (and times). */
export function foldOnto(state: ScopeState, events: readonly ScopeEvent[]): ScopeState {
  let next = state;
  for (const event of events) {
    const revision = next.revision === null ? 0n : next.revision + 1n;
    next = evolveScope(next, event, at(Number(revision) + 1), revision);
  }
  return next;
}

/** The state of key `name`, or undefined when the scope does not know it. */
export function stateOf(state: ScopeState, name: string): KeyState | undefined {
  return state.keys.get(keyIdFor(state.scope, name))?.state;
}

/** Everything a then-clause checks of a scope: marker, active key (by name) and each key's state. */
export interface ScopeSummary {
  readonly marker: MarkerState | null;
  readonly active: string | null;
  readonly keys: Readonly<Record<string, KeyState>>;
}

/**
 * Summarises `state` with keys by test name. Every key of the scope must be one of `names` (so a
 * stray key fails the test), and activeKeyId must be a key that is ACTIVE or null.
 */
export function summarise(state: ScopeState, names: readonly string[]): ScopeSummary {
  const byId = new Map(names.map((name) => [keyIdFor(state.scope, name), name]));
  const keys: Record<string, KeyState> = {};
  for (const key of state.keys.values()) {
    const name = byId.get(key.keyId);
    assert.ok(name !== undefined, `unexpected key ${key.keyId} in the scope`);
    keys[name] = key.state;
  }
  let active: string | null = null;
  if (state.activeKeyId !== null) {
    active = byId.get(state.activeKeyId) ?? `unknown:${state.activeKeyId}`;
  }
  return { marker: state.marker, active, keys };
}

export function activeKeyIds(state: ScopeState): KeyId[] {
  return [...state.keys.values()].filter((k) => k.state === 'ACTIVE').map((k) => k.keyId);
}

/** Asserts that `fn` throws a KeyledgerError with `code` (and, if given, these details). */
export function throwsCode(
  fn: () => unknown,
  code: ErrorCode,
  details?: Readonly<Record<string, unknown>>,
): KeyledgerError {
  let caught: unknown;
  assert.throws(fn, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof KeyledgerError, `expected a KeyledgerError, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  if (details !== undefined) {
    for (const [name, value] of Object.entries(details)) {
      assert.deepEqual(caught.details[name], value, `details.${name}`);
    }
  }
  return caught;
}

/** A small seeded PRNG (mulberry32) for property-style loops without a dependency. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
