import { KeyledgerError } from './errors.js';

/**
 * A managed key's lifecycle state. ACTIVE encrypts and decrypts (at most one per scope), INACTIVE
 * decrypts only, DISABLED neither, FAILED: the provider could not supply it (no material),
 * DESTROYED: material deleted, terminal.
 */
export const KEY_STATES = ['ACTIVE', 'INACTIVE', 'DISABLED', 'FAILED', 'DESTROYED'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** A scope's marker: whether key management is enabled for it. */
export const MARKER_STATES = ['ACTIVE', 'FAILED', 'DISABLED'] as const;
export type MarkerState = (typeof MARKER_STATES)[number];

/** What a provider may say of a key (HBase's ManagedKeyState). */
export const PROVIDER_KEY_STATES = ['ACTIVE', 'INACTIVE', 'DISABLED', 'FAILED'] as const;
export type ProviderKeyState = (typeof PROVIDER_KEY_STATES)[number];

/**
 * The states a key may be destroyed (crypto-shredded) from: the ones KEY_TRANSITIONS lets go to
 * DESTROYED. The ACTIVE key never is: it must stop being ACTIVE (rotate, set, disable) first.
 */
export const DESTROYABLE_KEY_STATES = ['INACTIVE', 'DISABLED'] as const satisfies readonly KeyState[];
export type DestroyableKeyState = (typeof DESTROYABLE_KEY_STATES)[number];

export function isDestroyable(state: KeyState): state is DestroyableKeyState {
  return (DESTROYABLE_KEY_STATES as readonly KeyState[]).includes(state);
}

/** The states in which a key's material may be used to decrypt. */
export function isUsableForDecrypt(state: KeyState): boolean {
  return state === 'ACTIVE' || state === 'INACTIVE';
}

/**
 * Every allowed key transition. A key comes into the ledger ACTIVE (enable, rotate, set-key);
 * FAILED keys are never persisted as keys (a failed enable records a FAILED marker instead), so
 * FAILED has no way out. Re-enabling a DISABLED key yields INACTIVE, never ACTIVE: an admin's
 * disable is undone only in two explicit steps (enable-managed-key, then set-managed-key).
 */
export const KEY_TRANSITIONS: Readonly<Record<KeyState, readonly KeyState[]>> = {
  ACTIVE: ['INACTIVE', 'DISABLED'],
  INACTIVE: ['ACTIVE', 'DISABLED', 'DESTROYED'],
  DISABLED: ['INACTIVE', 'DESTROYED'],
  FAILED: [],
  DESTROYED: [],
};

export function canTransition(from: KeyState, to: KeyState): boolean {
  return KEY_TRANSITIONS[from].includes(to);
}

export function assertTransition(from: KeyState, to: KeyState, keyId: string): void {
  if (!canTransition(from, to)) {
    throw new KeyledgerError('ERR_INVALID_TRANSITION', `key ${keyId} cannot go from ${from} to ${to}`, {
      keyId,
      from,
      to,
    });
  }
}
