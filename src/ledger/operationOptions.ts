import type { KeyInfo } from './keyInfo.js';

/** Who is acting and why; recorded on every event an operation writes. */
export interface OperationOptions {
  readonly actor?: string;
  readonly reason?: string;
  /** Ties the events of one request together (a new one is made if absent). */
  readonly correlationId?: string;
}

export interface WriteResult {
  /** Global position written; null when nothing was. */
  readonly position: bigint | null;
}

export interface KeyResult extends WriteResult {
  readonly key: KeyInfo;
}
