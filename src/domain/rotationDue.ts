import type { RotationPolicy } from './decideRotationPolicy.js';
import type { KeyId, MetadataHash } from './identities.js';
import { activeKey, type ScopeState } from './scopeState.js';

/**
 * When a policy says a rotation (or the disabling of an old key) is due. Pure, on a clock the
 * caller passes, so the same rules decide in `show-key-status`, in `rotate-due-keys --dry-run` and
 * inside the write (where a rotation another process made meanwhile makes it not due any more).
 *
 * The period counts from when the current key became ACTIVE, with whatever policy is in force
 * now: a policy set or changed mid-period moves the due time at once (a key older than a new,
 * shorter period is due right away), and a cleared policy makes nothing due.
 */

/** The policy that applies to a scope: its own, else the default. */
export interface EffectivePolicy extends RotationPolicy {
  readonly source: 'scope' | 'default';
}

export function effectivePolicy(
  own: RotationPolicy | null,
  fallback: RotationPolicy | null,
): EffectivePolicy | null {
  if (own !== null) return { ...own, source: 'scope' };
  if (fallback !== null) return { ...fallback, source: 'default' };
  return null;
}

/** An INACTIVE key whose age limit has passed: it is to be DISABLED. */
export interface InactiveKeyDue {
  readonly keyId: KeyId;
  readonly metadataHash: MetadataHash;
  readonly inactiveSince: string;
  readonly disableDueAt: string;
}

export interface ScopeRotationStatus {
  /** When the current ACTIVE key became ACTIVE; null without one. */
  readonly activeSince: string | null;
  /** When the next rotation falls due; null without a policy, an ACTIVE marker or an ACTIVE key. */
  readonly nextRotationDueAt: string | null;
  readonly rotationDue: boolean;
  readonly inactiveKeysDue: readonly InactiveKeyDue[];
}

function plus(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

/** The scope's rotation status under `policy` at `now`. */
export function scopeRotationStatus(
  state: ScopeState,
  policy: RotationPolicy | null,
  now: Date,
): ScopeRotationStatus {
  const active = activeKey(state);
  const activeSince = active?.updatedAt ?? null;
  // Rotation needs an ACTIVE marker (assertCanRotate): a disabled or failed scope is not rotated
  // by a schedule; enabling it again is a person's decision.
  const nextRotationDueAt =
    policy === null || state.marker !== 'ACTIVE' || activeSince === null
      ? null
      : plus(activeSince, policy.periodMs);
  const rotationDue = nextRotationDueAt !== null && Date.parse(nextRotationDueAt) <= now.getTime();
  const inactiveKeysDue: InactiveKeyDue[] = [];
  const maxAge = policy?.disableInactiveAfterMs ?? null;
  if (maxAge !== null) {
    for (const key of state.keys.values()) {
      // A key scheduled for destruction is left to it: disabling it would change the state the
      // schedule recorded.
      if (key.state !== 'INACTIVE' || key.destruction !== null) continue;
      const disableDueAt = plus(key.updatedAt, maxAge);
      if (Date.parse(disableDueAt) > now.getTime()) continue;
      inactiveKeysDue.push({
        keyId: key.keyId,
        metadataHash: key.metadataHash,
        inactiveSince: key.updatedAt,
        disableDueAt,
      });
    }
  }
  return { activeSince, nextRotationDueAt, rotationDue, inactiveKeysDue };
}

/** Whether the scope's rotation is due: what a due rotation re-checks against the scope it appends to. */
export function isRotationDue(state: ScopeState, policy: RotationPolicy | null, now: Date): boolean {
  return scopeRotationStatus(state, policy, now).rotationDue;
}

export interface SystemKeyRotationStatus {
  readonly recordedAt: string | null;
  readonly nextRotationDueAt: string | null;
  readonly rotationDue: boolean;
}

/** The system key's rotation status: its period counts from when the latest STK was recorded. */
export function systemKeyRotationStatus(
  latest: { readonly recordedAt: string } | null,
  policy: RotationPolicy | null,
  now: Date,
): SystemKeyRotationStatus {
  const recordedAt = latest?.recordedAt ?? null;
  const nextRotationDueAt = policy === null || recordedAt === null ? null : plus(recordedAt, policy.periodMs);
  return {
    recordedAt,
    nextRotationDueAt,
    rotationDue: nextRotationDueAt !== null && Date.parse(nextRotationDueAt) <= now.getTime(),
  };
}

/** A key's age at `now` in milliseconds, from when it entered the ledger. */
export function keyAgeMs(key: { readonly createdAt: string }, now: Date): number {
  return Math.max(0, now.getTime() - Date.parse(key.createdAt));
}
