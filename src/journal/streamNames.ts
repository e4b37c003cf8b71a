import { KeyledgerError } from '../domain/errors.js';
import { custodianBytes, type KeyId, type KeyScope, keyScope } from '../domain/identities.js';

/**
 * The ledger's stream names. All share the ledger's prefix, so one prefix-filtered subscription
 * sees the whole ledger and two ledgers can share a store. Scope streams encode custodian bytes
 * and namespace in base64url (no padding), which keeps names portable to EventStoreDB and makes
 * them reversible to the scope.
 */
export interface StreamNames {
  readonly prefix: string;
  scope(scope: KeyScope): string;
  readonly system: string;
  readonly operations: string;
  /** LedgerCheckpointed events: the MACed commitments to every stream's head (tamper evidence). */
  readonly checkpoints: string;
  material(keyId: KeyId): string;
  /** The key id a material stream belongs to (as material() wrote it), or null for any other stream. */
  materialKeyOf(stream: string): string | null;
  /** The scope a scope stream belongs to, or null for any other stream. */
  scopeOf(stream: string): KeyScope | null;
}

const PREFIX = /^[a-z][a-z0-9_]{0,30}-$/;

export function streamNames(prefix: string): StreamNames {
  if (!PREFIX.test(prefix)) {
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      'stream prefix must be lowercase letters, digits or _ (starting with a letter) and end with -',
      { prefix },
    );
  }
  const scopePart = `${prefix}scope-`;
  const materialPart = `${prefix}material-`;
  return {
    prefix,
    system: `${prefix}system`,
    operations: `${prefix}operations`,
    checkpoints: `${prefix}checkpoints`,
    scope: (scope) =>
      `${scopePart}${custodianBytes(scope.custodian).toString('base64url')}.${Buffer.from(scope.namespace, 'utf8').toString('base64url')}`,
    material: (keyId) => `${materialPart}${keyId}`,
    materialKeyOf: (stream) => (stream.startsWith(materialPart) ? stream.slice(materialPart.length) : null),
    scopeOf: (stream) => {
      if (!stream.startsWith(scopePart)) return null;
      const [custodian, namespace, extra] = stream.slice(scopePart.length).split('.');
      if (custodian === undefined || namespace === undefined || extra !== undefined) return null;
      return keyScope(
        Buffer.from(custodian, 'base64url').toString('base64'),
        Buffer.from(namespace, 'base64url').toString('utf8'),
      );
    },
  };
}

export const DEFAULT_PREFIX = 'kl-';
