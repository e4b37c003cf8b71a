import { KeyledgerError } from '../domain/errors.js';
import { custodianBytes, type KeyId, type KeyScope, keyScope } from '../domain/identities.js';

/**
 * The ledger's stream and snapshot names: this module builds every one of them. All share the
 * ledger's prefix, so one prefix-filtered subscription sees the whole ledger and two ledgers can
 * share a store. Scope streams encode custodian bytes and namespace in base64url (no padding),
 * which keeps names portable to EventStoreDB and makes them reversible to the scope.
 */
export interface StreamNames {
  readonly prefix: string;
  scope(scope: KeyScope): string;
  readonly system: string;
  readonly operations: string;
  /** LedgerCheckpointed events: the MACed commitments to every stream's head (tamper evidence). */
  readonly checkpoints: string;
  /** Every rewrap campaign's progress (src/domain/decideRewrap.ts). */
  readonly rewrap: string;
  /** The service's API tokens: created and revoked (src/domain/decideApiToken.ts). */
  readonly tokens: string;
  /** Rotation policies: set and cleared, per scope, default and system key (src/domain/decideRotationPolicy.ts). */
  readonly policies: string;
  /** Legacy re-encryption campaigns (src/domain/decideLegacyReencryption.ts). */
  readonly reencryption: string;
  material(keyId: KeyId): string;
  /**
   * The claim stream of the key with this checksum (KeyRecord.checksum, 16 hex digits, already in
   * every event that records the key, so the name reveals nothing the ledger did not): which scope
   * an imported key belongs to (src/domain/decideKeyClaim.ts).
   */
  keyClaim(checksum: string): string;
  /** The key id a material stream belongs to (as material() wrote it), or null for any other stream. */
  materialKeyOf(stream: string): string | null;
  /** The scope a scope stream belongs to, or null for any other stream. */
  scopeOf(stream: string): KeyScope | null;
  /** Snapshot of this process's read models (keymeta view and system keys). */
  readonly keymetaSnapshot: string;
  /** Snapshot of the newest checkpoint's revision, where the checkpointer starts looking. */
  readonly checkpointHint: string;
  /** The index of the historic keymeta snapshots that as-of queries start from. */
  readonly asOfIndex: string;
  /** The historic keymeta snapshot at a global position. */
  asOfSnapshot(position: bigint): string;
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
    rewrap: `${prefix}rewrap`,
    tokens: `${prefix}tokens`,
    policies: `${prefix}policies`,
    reencryption: `${prefix}reencryption`,
    keymetaSnapshot: `${prefix}keymeta`,
    checkpointHint: `${prefix}checkpoint-hint`,
    asOfIndex: asOfIndexName(prefix),
    asOfSnapshot: (position) => asOfSnapshotName(prefix, position),
    scope: (scope) =>
      `${scopePart}${custodianBytes(scope.custodian).toString('base64url')}.${Buffer.from(scope.namespace, 'utf8').toString('base64url')}`,
    material: (keyId) => `${materialPart}${keyId}`,
    keyClaim: (checksum) => {
      if (!/^[0-9a-f]{16}$/.test(checksum)) throw new TypeError('a key checksum is 16 lowercase hex digits');
      return `${prefix}keyclaim-${checksum}`;
    },
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

/** `<prefix>keymeta-asof-index` (for readers that know only the prefix: `streamNames(p).asOfIndex`). */
export function asOfIndexName(prefix: string): string {
  return `${prefix}keymeta-asof-index`;
}

/** `<prefix>keymeta-asof-<position>`. */
export function asOfSnapshotName(prefix: string, position: bigint): string {
  return `${prefix}keymeta-asof-${position}`;
}
