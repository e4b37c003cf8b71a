import { KeyledgerError } from './errors.js';
import type { KeyRecord } from './eventFields.js';
import type { ScopeEvent } from './events.js';
import { formatScope } from './identities.js';
import type { KeyFacts } from './keyFacts.js';
import type { ScopeState } from './scopeState.js';

/**
 * import-managed-key (docs/migration.md): records a key that existed before the ledger as a key of
 * the scope, ACTIVE or INACTIVE. The provider's answer for the alias is checked like any other
 * (scope, material); a key already recorded under another scope is refused (a key never serves
 * two scopes; under concurrency the key's claim, appended just before the import, enforces it);
 * the same key imported again into its scope in the same state changes nothing.
 */
export interface ImportCommand {
  readonly type: 'ImportManagedKey';
  readonly answer: KeyFacts | null;
  readonly stkIdentity: string;
  /** The keystore alias it came from. */
  readonly alias: string;
  readonly as: 'ACTIVE' | 'INACTIVE';
  /**
   * The scope (formatScope) the key belongs to: the one holding its claim (decideKeyClaim.ts), or
   * for an unclaimed key one that already records a key with the same checksum; null: none.
   */
  readonly knownIn: string | null;
}

export function decideImport(
  state: ScopeState,
  command: ImportCommand,
  recordOf: (facts: KeyFacts | null) => KeyRecord,
): ScopeEvent[] {
  const scope = formatScope(state.scope);
  const answer = command.answer;
  if (answer !== null && answer.state !== 'ACTIVE' && answer.state !== 'INACTIVE') {
    throw new KeyledgerError(
      'ERR_PROVIDER_NO_KEY',
      `the provider has no usable key under alias ${command.alias} (${answer.state})`,
      { scope },
    );
  }
  const checksum = answer?.key?.checksum ?? null;
  if (command.knownIn !== null && command.knownIn !== scope) {
    throw new KeyledgerError(
      'ERR_KEY_IN_OTHER_SCOPE',
      `the key under alias ${command.alias} is already a key of ${command.knownIn}; a key never serves two scopes`,
      { scope, otherScope: command.knownIn, checksum: checksum ?? '' },
    );
  }
  if (command.as === 'ACTIVE' && state.marker === 'DISABLED') {
    throw new KeyledgerError(
      'ERR_KEY_MANAGEMENT_DISABLED',
      `key management is disabled for ${scope}; enable it first or import the key INACTIVE`,
      { scope },
    );
  }
  const record = recordOf(answer);
  const known = state.keys.get(record.keyId);
  if (known !== undefined) {
    if (known.state === command.as) return [];
    // Anything else about a known key (activating it, disabling it) is what set and disable do.
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      `the key under alias ${command.alias} is already a ${known.state} key of ${scope}`,
      { scope, alias: command.alias, state: known.state },
    );
  }
  return [
    {
      type: 'ManagedKeyImported',
      data: {
        ...state.scope,
        key: record,
        state: command.as,
        previousKeyId: command.as === 'ACTIVE' ? state.activeKeyId : null,
        origin: { alias: command.alias, checksum: record.checksum },
      },
    },
  ];
}
