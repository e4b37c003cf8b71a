import { systemKeyIdentity } from '../crypto/systemKeyIdentity.js';
import { newKeysIn } from '../domain/decideScope.js';
import { KeyledgerError } from '../domain/errors.js';
import { formatScope, type KeyId } from '../domain/identities.js';
import type { Journal } from '../journal/decideAndAppend.js';
import type { StreamNames } from '../journal/streamNames.js';
import { formatKeyMetadata } from '../providers/keyMetadata.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { SecretBytes } from '../secrets/secretBytes.js';
import { KeyClaims, type LoadedClaim } from './keyClaims.js';
import { type KeyInfo, toKeyInfo } from './keyInfo.js';
import { KeyMaterialStreams } from './keyMaterialStreams.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { OperationOptions } from './operationOptions.js';
import { checkProviderAnswer } from './providerAnswers.js';
import type { ScopeWriter } from './scopeWriter.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';

interface ImportDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly provider: ManagedKeyProvider;
  readonly projector: LedgerProjector;
  readonly systemKeys: SystemKeyHandles;
  readonly scopes: ScopeWriter;
}

export interface ImportResult {
  /** Global position written; null when the key was already there in that state. */
  readonly position: bigint | null;
  readonly key: KeyInfo;
}

/** Keystore aliases as keytool writes them (PKCS#12 friendly names), lower-cased by the provider. */
const ALIAS = /^[^\s\p{Cc}]{1,255}$/u;

/**
 * import-managed-key (docs/migration.md): a key that already exists in the provider under a
 * keystore alias (an old deployment's master key or per-table keys) is recorded as a key of a
 * scope, ACTIVE or INACTIVE, with ManagedKeyImported naming its origin (alias, checksum). Its
 * material is wrapped under the current system key first, as for every new key. Rules in
 * src/domain/decideImport.ts; a key never serving two scopes holds under concurrency through the
 * key's claim (src/domain/decideKeyClaim.ts), appended before the import event.
 */
export class KeyImports {
  readonly #d: ImportDeps;
  readonly #materials: KeyMaterialStreams;
  readonly #claims: KeyClaims;

  constructor(deps: ImportDeps) {
    this.#d = deps;
    this.#materials = new KeyMaterialStreams(deps);
    this.#claims = new KeyClaims(deps);
  }

  async importManagedKey(
    custodian: string,
    namespace: string | undefined,
    alias: string,
    as: 'ACTIVE' | 'INACTIVE',
    options?: OperationOptions,
  ): Promise<ImportResult> {
    if (!ALIAS.test(alias)) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'an alias is 1 to 255 characters without spaces', {
        alias: alias.slice(0, 64),
      });
    }
    const { scope, context, stk, state } = await this.#d.scopes.begin(custodian, namespace, options);
    const metadata = formatKeyMetadata({ kind: 'alias', alias: alias.toLowerCase(), scope });
    const answer = checkProviderAnswer(await this.#d.provider.unwrapKey(metadata, null));
    const keys = new Map<KeyId, SecretBytes>();
    try {
      if (
        answer === null ||
        answer.key === null ||
        answer.facts.key === null ||
        answer.facts.key.checksum === null
      ) {
        throw new KeyledgerError('ERR_PROVIDER_NO_KEY', `the provider has no key under alias ${alias}`, {
          scope: formatScope(scope),
        });
      }
      // A system key is never a data key (KeymetaAdmin refuses the same).
      const identity = systemKeyIdentity(answer.key);
      const checksum = answer.facts.key.checksum;
      if (this.#d.projector.systemKeys.keys.some((k) => k.identity === identity || k.identity === checksum)) {
        throw new KeyledgerError(
          'ERR_PROVIDER_INVALID_ANSWER',
          'the alias names a system key, not a data key',
          {
            scope: formatScope(scope),
          },
        );
      }
      keys.set(answer.facts.key.keyId, answer.key);
      const facts = answer.facts;
      const claim = {
        type: 'ClaimKey',
        scope,
        keyId: answer.facts.key.keyId,
        checksum,
        alias,
      } as const;
      // One stream read: who holds the key's claim (or, unclaimed, which other scope records it).
      // The decider refuses on it in its usual order; the claim appended just before the import
      // event is what makes the refusal hold against a concurrent import into another scope.
      let claimed: LoadedClaim | undefined = await this.#claims.load(scope, checksum);
      const holder = claimed.state.claim?.scope ?? claimed.recordedIn;
      const written = await this.#d.scopes.commit(
        scope,
        state,
        context,
        () => ({
          type: 'ImportManagedKey',
          answer: facts,
          stkIdentity: stk.identity,
          alias,
          as,
          knownIn: holder,
        }),
        async (events, current, now) => {
          // Only an import that writes claims (a refused or no-op import leaves no claim behind);
          // on a retry after a lost race on the scope stream the claim is found and not written again.
          const initial = claimed;
          claimed = undefined;
          await this.#claims.claim(claim, context, initial);
          await this.#materials.write(newKeysIn(current, events), scope, context, now, { stk, keys });
        },
      );
      const key = this.#d.scopes.view(scope).keys.get(answer.facts.key.keyId);
      if (key === undefined) throw new TypeError('the imported key is not in this process’s view');
      return { position: written.position, key: toKeyInfo(key, scope) };
    } finally {
      answer?.key?.zero();
    }
  }
}
