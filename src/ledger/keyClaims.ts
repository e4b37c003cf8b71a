import {
  type ClaimKeyCommand,
  decideKeyClaim,
  emptyKeyClaimState,
  evolveKeyClaim,
  type KeyClaimState,
} from '../domain/decideKeyClaim.js';
import { KEY_CLAIM_EVENT_TYPES, type KeyClaimEvent, parseEventOf } from '../domain/events.js';
import { formatScope, type KeyScope } from '../domain/identities.js';
import {
  decideAndAppend,
  expectedAfter,
  type Journal,
  type Loaded,
  type Written,
} from '../journal/decideAndAppend.js';
import { deterministicEventId, type OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { LedgerProjector } from './ledgerProjector.js';

interface ClaimDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
}

/** A key's claim as read for a decision: the claim stream folded, and what the view records. */
export interface LoadedClaim extends Loaded<KeyClaimState> {
  /** Another scope this process's view records the key under (keys no claim was written for), or null. */
  readonly recordedIn: string | null;
}

/**
 * Which scope an imported key belongs to (src/domain/decideKeyClaim.ts): one stream per key,
 * read in one call, and claimed through the one write path at expected revision "no stream", so
 * the store's optimistic concurrency decides a race between two imports of one key.
 */
export class KeyClaims {
  readonly #d: ClaimDeps;
  #index: Map<string, Set<string>> | null = null;

  constructor(deps: ClaimDeps) {
    this.#d = deps;
  }

  /** The claim of the key with `checksum`, and (when unclaimed) another scope recording it. */
  async load(scope: KeyScope, checksum: string): Promise<LoadedClaim> {
    let state = emptyKeyClaimState();
    for (const recorded of await this.#d.journal.store.readStream(this.#d.names.keyClaim(checksum))) {
      state = evolveKeyClaim(state, parseEventOf(recorded, KEY_CLAIM_EVENT_TYPES), recorded.revision);
    }
    // Only an unclaimed key needs the view (through a checksum index, not a scan of every key): it
    // covers keys recorded before claims existed and keys that came by enable/rotate/set (the
    // provider's, never claimed).
    const recordedIn = state.claim === null ? this.#recordedElsewhere(scope, checksum) : null;
    return { state, expected: expectedAfter(state.revision), recordedIn };
  }

  /**
   * Claims the key for the command's scope, or finds it already claimed for it (nothing written);
   * refused with ERR_KEY_IN_OTHER_SCOPE when another scope holds it. A lost race re-reads the
   * claim the winner wrote and decides again.
   */
  async claim(
    command: Omit<ClaimKeyCommand, 'recordedIn'>,
    context: OperationContext,
    initial?: LoadedClaim,
  ): Promise<Written<KeyClaimState, KeyClaimEvent>> {
    let recordedIn = initial?.recordedIn ?? null;
    const load = async () => {
      const loaded = await this.load(command.scope, command.checksum);
      recordedIn = loaded.recordedIn;
      return loaded;
    };
    return decideAndAppend<KeyClaimState, KeyClaimEvent>(this.#d.journal, {
      stream: this.#d.names.keyClaim(command.checksum),
      context,
      load,
      ...(initial === undefined ? {} : { initial }),
      decide: (state) => decideKeyClaim(state, { ...command, recordedIn }),
      // The claiming scope is part of the id: two imports sharing a correlation id (a caller's
      // fixed one) but claiming for two scopes are two appends, never one mistaken for a retry.
      eventIds: (events) =>
        events.map((_, i) =>
          deterministicEventId(
            'keyclaim',
            context.correlationId,
            command.checksum,
            formatScope(command.scope),
            String(i),
          ),
        ),
    });
  }

  /** The first scope other than `scope` whose keys (in this process's view) include `checksum`. */
  #recordedElsewhere(scope: KeyScope, checksum: string): string | null {
    const own = formatScope(scope);
    for (const where of (this.#index ?? this.#buildIndex()).get(checksum) ?? [])
      if (where !== own) return where;
    return null;
  }

  /**
   * checksum → the scopes recording a key with it: one pass over the view on first use, then kept
   * up to date by every event the projector applies that brings a key into a scope, so an import
   * does not scan every key of the ledger (a server imports many). Keys never leave a scope's
   * record (a destroyed key keeps its checksum), so entries are only ever added.
   */
  #buildIndex(): Map<string, Set<string>> {
    const index = new Map<string, Set<string>>();
    const add = (checksum: string, scope: string) => {
      const scopes = index.get(checksum);
      if (scopes === undefined) index.set(checksum, new Set([scope]));
      else scopes.add(scope);
    };
    // The pass and the subscription happen in one synchronous step: no event falls between them.
    for (const state of this.#d.projector.keymeta.scopes.values()) {
      const where = formatScope(state.scope);
      for (const key of state.keys.values()) add(key.checksum, where);
    }
    this.#d.projector.onApplied((event) => {
      switch (event.type) {
        case 'KeyManagementEnabled':
        case 'ManagedKeyRotated':
        case 'ManagedKeySet':
        case 'ManagedKeyImported':
          add(
            event.data.key.checksum,
            formatScope({ custodian: event.data.custodian, namespace: event.data.namespace }),
          );
          break;
        default:
          break;
      }
    });
    this.#index = index;
    return index;
  }
}
