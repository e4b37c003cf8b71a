import type { LedgerEvent } from '../domain/events.js';
import { type KeyId, type ScopeKey, scopeKey } from '../domain/identities.js';

/** What one ledger event means for this process's L1 caches. */
export type Invalidation =
  /** Resolutions that consulted the scope must be decided again. */
  | { readonly kind: 'scope'; readonly scopeKey: ScopeKey }
  /** The key's state or usability changed: it leaves L1 (zeroed) and is rebuilt from L2 if needed. */
  | { readonly kind: 'key'; readonly keyId: KeyId }
  /** Every key of the scope leaves L1. */
  | { readonly kind: 'keysOf'; readonly scopeKey: ScopeKey }
  | { readonly kind: 'all' };

/**
 * The invalidations an event calls for, in every process that applies it. Pure: the same events
 * that change the keymeta view change the caches, so a cache can never serve a key that the view
 * (and so the ledger) no longer allows.
 *
 * System-key events invalidate nothing here: a rotated STK wraps new DEKs from then on (the
 * current STK is read from the view at each wrap), while cached DEKs are unchanged and every
 * earlier STK stays valid for unwrapping. Material events (rewraps) leave DEKs unchanged too.
 */
export function invalidationsFor(event: LedgerEvent): Invalidation[] {
  switch (event.type) {
    case 'KeyManagementEnabled':
    case 'ManagedKeyRotated':
    case 'ManagedKeySet':
    case 'ManagedKeyImported': {
      const sk = scopeKey(event.data);
      const out: Invalidation[] = [
        { kind: 'scope', scopeKey: sk },
        { kind: 'key', keyId: event.data.key.keyId },
      ];
      if (event.data.previousKeyId !== null) out.push({ kind: 'key', keyId: event.data.previousKeyId });
      return out;
    }
    case 'KeyManagementEnableFailed':
      return [{ kind: 'scope', scopeKey: scopeKey(event.data) }];
    case 'KeyManagementDisabled':
      return [
        { kind: 'scope', scopeKey: scopeKey(event.data) },
        ...event.data.deactivatedKeyIds.map((keyId) => ({ kind: 'key' as const, keyId })),
      ];
    case 'ManagedKeyDisabled':
    case 'ManagedKeyReenabled':
      return [
        { kind: 'scope', scopeKey: scopeKey(event.data) },
        { kind: 'key', keyId: event.data.keyId },
      ];
    case 'ManagedKeyRefreshed':
      if (event.data.state === event.data.previousState) return [];
      return [
        { kind: 'scope', scopeKey: scopeKey(event.data) },
        { kind: 'key', keyId: event.data.keyId },
      ];
    // Scheduling or cancelling a destruction leaves the key's state, so what it may do, alone.
    case 'ManagedKeyDestructionScheduled':
    case 'ManagedKeyDestructionCancelled':
      return [];
    // Its material is gone: the key leaves L1 (zeroed) and can never be rebuilt from L2.
    case 'ManagedKeyDestroyed':
      return [
        { kind: 'scope', scopeKey: scopeKey(event.data) },
        { kind: 'key', keyId: event.data.keyId },
      ];
    case 'CacheEntryEjected':
      return event.data.keyId === null
        ? [{ kind: 'keysOf', scopeKey: scopeKey(event.data) }]
        : [
            { kind: 'scope', scopeKey: scopeKey(event.data) },
            { kind: 'key', keyId: event.data.keyId },
          ];
    case 'CacheCleared':
      return [{ kind: 'all' }];
    case 'SystemKeyRecorded':
    case 'SystemKeyRotated':
    case 'KeyMaterialWrapped':
      return [];
    // Retiring an STK happens only once no key's material is under it: no DEK changes. Rewrap
    // campaign events are bookkeeping; the material they move arrives as KeyMaterialWrapped.
    case 'SystemKeyRetired':
    // Destroyed only once retired, so no DEK the caches hold is under it.
    case 'SystemKeyDestroyed':
    case 'RewrapStarted':
    case 'RewrapProgressed':
    case 'RewrapRetargeted':
    case 'RewrapFinished':
      return [];
    // A checkpoint commits to the ledger's stream heads (tamper evidence); no key changes.
    case 'LedgerCheckpointed':
      return [];
    // API tokens authenticate callers of the service; they are no keys.
    case 'ApiTokenCreated':
    case 'ApiTokenRevoked':
      return [];
    // A rotation policy says when to rotate; the rotation itself is the scope event that changes keys.
    case 'RotationPolicySet':
    case 'RotationPolicyCleared':
      return [];
    // A claim says which scope an imported key belongs to; the import that follows changes keys.
    case 'ManagedKeyClaimed':
      return [];
    // Re-encrypting legacy records is bookkeeping: no key changes.
    case 'LegacyReencryptionStarted':
    case 'LegacyReencryptionProgressed':
    case 'LegacyReencryptionCompleted':
      return [];
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}
