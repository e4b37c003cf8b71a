import { KeyledgerError } from './errors.js';
import type { EventOf } from './events.js';
import type { MetadataHash } from './identities.js';

/** The latest recorded system key, as the decider needs it (the systemKeys projection has it). */
export interface LatestSystemKey {
  readonly sequence: number;
  readonly identity: string;
  readonly metadataHash: MetadataHash;
}

export interface SystemKeyFacts {
  readonly identity: string;
  readonly metadata: string;
  readonly metadataHash: MetadataHash;
}

type SystemKeyEvent = EventOf<'SystemKeyRecorded'> | EventOf<'SystemKeyRotated'>;

/** Records the first system key of a new ledger. */
export function decideInitialise(latest: LatestSystemKey | null, facts: SystemKeyFacts): SystemKeyEvent[] {
  if (latest !== null) {
    throw new KeyledgerError('ERR_LEDGER_ALREADY_INITIALISED', 'the ledger already has a system key', {
      sequence: latest.sequence,
    });
  }
  return [{ type: 'SystemKeyRecorded', data: { sequence: 1, ...facts, previousIdentity: null } }];
}

/**
 * rotateSTK: records the provider's current system key when its metadata differs from the latest
 * one (sequence + 1); same metadata → nothing. Same metadata with other key bytes means the key
 * under that name was replaced, which would strand every DEK wrapped by the old bytes: refused.
 */
export function decideRotateSystemKey(
  latest: LatestSystemKey | null,
  facts: SystemKeyFacts,
): SystemKeyEvent[] {
  if (latest === null) {
    throw new KeyledgerError('ERR_LEDGER_NOT_INITIALISED', 'the ledger has no system key yet; run init', {});
  }
  if (latest.metadataHash === facts.metadataHash) {
    if (latest.identity !== facts.identity) {
      throw new KeyledgerError(
        'ERR_PROVIDER_INVALID_ANSWER',
        'the system key under the recorded metadata has changed its bytes; restore the old key and add the new one under a new name',
        { sequence: latest.sequence, recordedIdentity: latest.identity, providerIdentity: facts.identity },
      );
    }
    return [];
  }
  return [
    {
      type: 'SystemKeyRotated',
      data: { sequence: latest.sequence + 1, ...facts, previousIdentity: latest.identity },
    },
  ];
}

/** What destroying a system key must know: every recorded system key and what became of it. */
export interface DestroyFacts {
  readonly identity: string;
  /** Every recorded system key, in sequence order. */
  readonly systemKeys: readonly {
    readonly sequence: number;
    readonly identity: string;
    readonly metadata: string;
    readonly retired: boolean;
    readonly destroyed: boolean;
  }[];
}

/**
 * destroy-stk: a retired system key's objects are destroyed in the provider that made them, and
 * SystemKeyDestroyed records it (who and why are the event's actor and reason). Refused for a key
 * never recorded (ERR_SYSTEM_KEY_NOT_FOUND) and one not retired (ERR_SYSTEM_KEY_NOT_RETIRED: it may
 * still unwrap something). A key recorded as destroyed already → nothing: the command is re-run
 * after a crash between destroying and recording (the caller destroys first), so repeating it
 * must be harmless.
 */
export function decideDestroySystemKey(facts: DestroyFacts): EventOf<'SystemKeyDestroyed'>[] {
  const { identity } = facts;
  const recorded = facts.systemKeys.filter((k) => k.identity === identity);
  const last = recorded.at(-1);
  if (last === undefined) {
    throw new KeyledgerError('ERR_SYSTEM_KEY_NOT_FOUND', `no system key ${identity} is recorded`, {
      identity,
    });
  }
  if (recorded.some((k) => k.destroyed)) return [];
  if (!recorded.some((k) => k.retired)) {
    throw new KeyledgerError(
      'ERR_SYSTEM_KEY_NOT_RETIRED',
      `system key #${last.sequence} (${identity}) is not retired; rewrap and retire-stk first`,
      { identity, sequence: last.sequence },
    );
  }
  return [
    { type: 'SystemKeyDestroyed', data: { identity, sequence: last.sequence, metadata: last.metadata } },
  ];
}
