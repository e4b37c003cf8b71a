import type { KeyId, ManagedKey } from '../domain/index.js';
import type { KeyState, MarkerState } from '../domain/keyState.js';

/** A key as the admin API and the CLI show it: state and names, never bytes. */
export interface KeyInfo {
  /** Custodian, base64. */
  readonly custodian: string;
  readonly namespace: string;
  readonly keyId: KeyId;
  readonly state: KeyState;
  readonly metadata: string;
  readonly metadataHash: string;
  /** Key check value (docs/formats.md). */
  readonly checksum: string;
  /** Checksum of the system key that wraps the stored material. */
  readonly stkIdentity: string;
  readonly createdAt: string;
  readonly refreshedAt: string;
  readonly updatedAt: string;
  /** When a scheduled destruction falls due (docs/audit.md); null when none is scheduled. */
  readonly destructionDueAt: string | null;
}

export interface ScopeStatus {
  readonly custodian: string;
  readonly namespace: string;
  readonly marker: MarkerState | null;
  readonly keys: readonly KeyInfo[];
}

/**
 * A scope as it was at a moment (`ledger.scopeAsOf`): the same shape as `getScopeStatus`, plus the
 * moment asked for (`at`: a position's decimal string or an ISO 8601 time) and the last global
 * position it includes (a decimal string).
 */
export interface ScopeStatusAsOf extends ScopeStatus {
  readonly at: string;
  readonly position: string;
}

export function toKeyInfo(key: ManagedKey, scope: { custodian: string; namespace: string }): KeyInfo {
  return {
    custodian: scope.custodian,
    namespace: scope.namespace,
    keyId: key.keyId,
    state: key.state,
    metadata: key.metadata,
    metadataHash: key.metadataHash,
    checksum: key.checksum,
    stkIdentity: key.stkIdentity,
    createdAt: key.createdAt,
    refreshedAt: key.refreshedAt,
    updatedAt: key.updatedAt,
    destructionDueAt: key.destruction?.dueAt ?? null,
  };
}
