import { KeyledgerError } from './errors.js';
import type { KeyClaimEvent } from './events.js';
import { formatScope, type KeyId, type KeyScope } from './identities.js';

/**
 * A key never serves two scopes (import-managed-key, docs/migration.md). The rule holds at write
 * time: each imported key has a claim stream (`<prefix>keyclaim-<checksum>`) whose first and only
 * event, ManagedKeyClaimed, names the scope that owns the key. An import appends it at expected
 * revision "no stream" before its ManagedKeyImported, so of two imports racing for one key into
 * two scopes the store lets exactly one claim stand; the other re-decides against that claim and
 * is refused. Decisions:
 *
 * - No claim, and no other scope records the key: claim it for this scope.
 * - A claim for this scope: nothing to write (a retry, or the resume of an import that crashed
 *   between its claim and its import event); the import goes on.
 * - A claim for another scope: ERR_KEY_IN_OTHER_SCOPE naming it.
 * - No claim, but the caller's view records the key under another scope (keys that arrived before
 *   claims existed, or by enable/rotate/set, which never claim): ERR_KEY_IN_OTHER_SCOPE as well.
 */

export interface KeyClaimState {
  /** The scope (formatScope) holding the claim, and the key id it claimed; null: unclaimed. */
  readonly claim: { readonly scope: string; readonly keyId: KeyId } | null;
  /** Revision of the last event folded in; null for an empty stream. */
  readonly revision: bigint | null;
}

export function emptyKeyClaimState(): KeyClaimState {
  return { claim: null, revision: null };
}

/** Folds one event of a claim stream. A claim is never replaced: a second one (impossible through
 * the write path, which appends only to an empty stream) leaves the first standing. */
export function evolveKeyClaim(state: KeyClaimState, event: KeyClaimEvent, revision: bigint): KeyClaimState {
  switch (event.type) {
    case 'ManagedKeyClaimed': {
      const claim = state.claim ?? {
        scope: formatScope({ custodian: event.data.custodian, namespace: event.data.namespace }),
        keyId: event.data.keyId,
      };
      return { claim, revision };
    }
    default: {
      const unreachable: never = event.type;
      return unreachable;
    }
  }
}

export interface ClaimKeyCommand {
  readonly type: 'ClaimKey';
  readonly scope: KeyScope;
  readonly keyId: KeyId;
  /** The key's checksum (KeyRecord.checksum): what the claim stream is named by. */
  readonly checksum: string;
  /** The alias the key is imported from (for the refusal's message only). */
  readonly alias: string;
  /**
   * The scope (formatScope) the caller's view records a key with this checksum under, other than
   * the importing scope, or null: covers keys no claim was ever written for.
   */
  readonly recordedIn: string | null;
}

export function decideKeyClaim(state: KeyClaimState, command: ClaimKeyCommand): KeyClaimEvent[] {
  const scope = formatScope(command.scope);
  const holder = state.claim?.scope ?? command.recordedIn;
  if (holder !== null && holder !== scope) {
    throw new KeyledgerError(
      'ERR_KEY_IN_OTHER_SCOPE',
      `the key under alias ${command.alias} is already a key of ${holder}; a key never serves two scopes`,
      { scope, otherScope: holder, checksum: command.checksum },
    );
  }
  if (state.claim !== null) return [];
  return [
    {
      type: 'ManagedKeyClaimed',
      data: { ...command.scope, keyId: command.keyId, checksum: command.checksum },
    },
  ];
}
