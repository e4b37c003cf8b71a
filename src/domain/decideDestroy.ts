import { createHash } from 'node:crypto';
import { KeyledgerError } from './errors.js';
import type { EventOf, ScopeEvent } from './events.js';
import { formatScope, type KeyId, type MetadataHash } from './identities.js';
import { assertTransition, isDestroyable } from './keyState.js';
import { findKeyByHash, type ManagedKey, type ScopeState } from './scopeState.js';

/**
 * Crypto-shredding as a pure decider (docs/audit.md): a DISABLED or INACTIVE key is scheduled for
 * destruction after a grace period, the schedule can be cancelled until it runs, and once due the
 * key becomes DESTROYED with a receipt of the wrapped material the service then deletes. The
 * service reads the material and the clock; the rules live here, with no I/O.
 */

/** Default grace period between scheduling a destruction and its running: 7 days. */
export const DEFAULT_DESTROY_GRACE_MS = 7 * 24 * 60 * 60 * 1000;
/** The longest grace period accepted: 10 years (anything longer is a typo, not a plan). */
export const MAX_DESTROY_GRACE_MS = 3650 * 24 * 60 * 60 * 1000;

/** What the service found in a key's material stream just before the destruction. */
export interface MaterialReceipt {
  readonly materialStream: string;
  readonly materialEvents: number;
  /** materialHashOf the stream's events (hex SHA-256). */
  readonly materialHash: string;
}

export type DestroyCommand =
  | {
      readonly type: 'ScheduleKeyDestruction';
      readonly metadataHash: MetadataHash;
      readonly now: Date;
      readonly graceMs: number;
    }
  | { readonly type: 'CancelKeyDestruction'; readonly metadataHash: MetadataHash }
  | {
      readonly type: 'DestroyDueKey';
      readonly keyId: KeyId;
      readonly now: Date;
      readonly material: MaterialReceipt;
      /** The system key of the stream's last copy; null when the stream is empty (the key's own is used). */
      readonly materialStkIdentity: string | null;
    };

export function decideDestroy(state: ScopeState, command: DestroyCommand): ScopeEvent[] {
  switch (command.type) {
    case 'ScheduleKeyDestruction':
      return [decideSchedule(state, command.metadataHash, command.now, command.graceMs)];
    case 'CancelKeyDestruction':
      return [decideCancel(state, command.metadataHash)];
    case 'DestroyDueKey':
      return decideDestroyDue(
        state,
        command.keyId,
        command.now,
        command.material,
        command.materialStkIdentity,
      );
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/** A grace period must be a whole number of milliseconds from 0 to MAX_DESTROY_GRACE_MS. */
export function assertGracePeriod(graceMs: number): void {
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_DESTROY_GRACE_MS) {
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      `a grace period must be 0 to ${MAX_DESTROY_GRACE_MS / 86_400_000} days, in whole milliseconds`,
      { graceMs: Number.isFinite(graceMs) ? graceMs : String(graceMs) },
    );
  }
}

/** The keys of a scope whose scheduled destruction is due at `now`, in the order they entered. */
export function dueDestructions(state: ScopeState, now: Date): ManagedKey[] {
  return [...state.keys.values()].filter((k) => isDue(k, now));
}

function isDue(key: ManagedKey, now: Date): boolean {
  return (
    key.state !== 'DESTROYED' &&
    key.destruction !== null &&
    Date.parse(key.destruction.dueAt) <= now.getTime()
  );
}

function decideSchedule(
  state: ScopeState,
  hash: MetadataHash,
  now: Date,
  graceMs: number,
): EventOf<'ManagedKeyDestructionScheduled'> {
  assertGracePeriod(graceMs);
  const key = requireLiveKey(state, hash);
  if (key.destruction !== null) {
    // Scheduling again would silently move the deadline (maybe closer): cancel, then schedule.
    throw new KeyledgerError(
      'ERR_KEY_DESTRUCTION_SCHEDULED',
      `key ${hash} of ${formatScope(state.scope)} is already scheduled for destruction at ${key.destruction.dueAt}; cancel it first to change the date`,
      { scope: formatScope(state.scope), metadataHash: hash, dueAt: key.destruction.dueAt },
    );
  }
  if (key.state === 'ACTIVE') {
    throw new KeyledgerError(
      'ERR_KEY_ACTIVE',
      `key ${hash} is the ACTIVE key of ${formatScope(state.scope)} and cannot be destroyed; rotate, set another key or disable it first`,
      { scope: formatScope(state.scope), metadataHash: hash },
    );
  }
  assertTransition(key.state, 'DESTROYED', key.keyId);
  if (!isDestroyable(key.state)) throw new Error(`unreachable: ${key.state} passed the transition check`);
  return {
    type: 'ManagedKeyDestructionScheduled',
    data: {
      ...state.scope,
      keyId: key.keyId,
      state: key.state,
      dueAt: new Date(now.getTime() + graceMs).toISOString(),
    },
  };
}

function decideCancel(state: ScopeState, hash: MetadataHash): EventOf<'ManagedKeyDestructionCancelled'> {
  const key = requireLiveKey(state, hash);
  if (key.destruction === null) {
    throw new KeyledgerError(
      'ERR_KEY_DESTRUCTION_NOT_SCHEDULED',
      `key ${hash} of ${formatScope(state.scope)} has no scheduled destruction to cancel`,
      { scope: formatScope(state.scope), metadataHash: hash, state: key.state },
    );
  }
  return {
    type: 'ManagedKeyDestructionCancelled',
    data: { ...state.scope, keyId: key.keyId, dueAt: key.destruction.dueAt },
  };
}

/**
 * Nothing when the destruction is not (or no longer) due: cancelled, not yet due, or already run
 * by another process. Those are the races of a periodic run, not errors.
 */
function decideDestroyDue(
  state: ScopeState,
  keyId: KeyId,
  now: Date,
  material: MaterialReceipt,
  materialStkIdentity: string | null,
): EventOf<'ManagedKeyDestroyed'>[] {
  const key = state.keys.get(keyId);
  if (key === undefined) {
    throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no key ${keyId} in ${formatScope(state.scope)}`, {
      scope: formatScope(state.scope),
      keyId,
    });
  }
  if (!isDue(key, now) || key.destruction === null) return [];
  assertTransition(key.state, 'DESTROYED', key.keyId);
  if (!isDestroyable(key.state)) throw new Error(`unreachable: ${key.state} passed the transition check`);
  return [
    {
      type: 'ManagedKeyDestroyed',
      data: {
        ...state.scope,
        keyId: key.keyId,
        metadataHash: key.metadataHash,
        previousState: key.state,
        stkIdentity: materialStkIdentity ?? key.stkIdentity,
        receipt: { ...material, scheduledAt: key.destruction.scheduledAt, dueAt: key.destruction.dueAt },
      },
    },
  ];
}

/** The key named by `hash`, refusing an unknown scope, an unknown key and a destroyed one. */
function requireLiveKey(state: ScopeState, hash: MetadataHash): ManagedKey {
  if (state.revision === null) {
    throw new KeyledgerError('ERR_SCOPE_NOT_FOUND', `the ledger has no scope ${formatScope(state.scope)}`, {
      scope: formatScope(state.scope),
    });
  }
  const key = findKeyByHash(state, hash);
  if (key === null) {
    throw new KeyledgerError('ERR_KEY_NOT_FOUND', `no key ${hash} in ${formatScope(state.scope)}`, {
      scope: formatScope(state.scope),
      metadataHash: hash,
    });
  }
  if (key.state === 'DESTROYED') {
    throw new KeyledgerError(
      'ERR_KEY_DESTROYED',
      `key ${hash} of ${formatScope(state.scope)} is already DESTROYED; a destruction cannot be undone`,
      { scope: formatScope(state.scope), metadataHash: hash },
    );
  }
  return key;
}

/** One stored copy of a key's wrapped material, as the material stream holds it. */
export interface MaterialCopy {
  readonly revision: bigint;
  readonly eventId: string;
  readonly keyId: string;
  readonly stkIdentity: string;
  readonly algorithm: string;
  readonly wrapped: string;
}

const MATERIAL_HASH_TAG = 'keyledger-destroyed-material-v1';

/**
 * The receipt's hash of what a destruction deleted: hex SHA-256 over the tag and, per event in
 * revision order, each field as a 4-byte big-endian length and its UTF-8 bytes (revision in
 * decimal, event id, key id, STK identity, algorithm, wrapped base64). Ciphertext only: anyone
 * holding a backup or an export of the stream can recompute it and see that it is what went.
 */
export function materialHashOf(copies: readonly MaterialCopy[]): string {
  const hash = createHash('sha256');
  const field = (value: string) => {
    const bytes = Buffer.from(value, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  field(MATERIAL_HASH_TAG);
  for (const c of copies) {
    for (const value of [c.revision.toString(), c.eventId, c.keyId, c.stkIdentity, c.algorithm, c.wrapped]) {
      field(value);
    }
  }
  return hash.digest('hex');
}
