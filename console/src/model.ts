/** The shapes of the /v1 answers the console reads (docs/api.md; only the fields it uses). */
export const STATES = ['ACTIVE', 'INACTIVE', 'DISABLED', 'FAILED', 'DESTROYED'] as const;
export type KeyState = (typeof STATES)[number];

export interface KeyInfo {
  readonly custodian: string;
  readonly namespace: string;
  readonly state: KeyState;
  readonly metadataHash: string;
  readonly keyId: string | null;
  readonly checksum: string;
  readonly stkIdentity: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly destructionDueAt: string | null;
}

export interface ScopeStatus {
  readonly custodian: string;
  readonly namespace: string;
  readonly marker: string | null;
  readonly keys: readonly KeyInfo[];
}

export interface HistoryEntry {
  readonly position: string;
  readonly type: string;
  readonly occurredAt: string;
  readonly actor: string;
  readonly reason: string | null;
  readonly correlationId: string;
  readonly marker: { readonly from: string | null; readonly to: string | null } | null;
  readonly keys: readonly {
    readonly keyId: string | null;
    readonly metadataHash: string;
    readonly from: string | null;
    readonly to: string;
  }[];
  readonly subject: { readonly keyId: string | null; readonly metadataHash: string } | null;
}

export interface Whoami {
  readonly principal: string | null;
  readonly grants: readonly string[] | null;
}

export interface RewrapStatus {
  readonly latestStkIdentity: string | null;
  readonly systemKeys: readonly {
    readonly sequence: number;
    readonly identity: string;
    readonly current: boolean;
    readonly retiredAt: string | null;
    readonly keys: number;
  }[];
  readonly pending: number;
  readonly open: { readonly campaignId: string; readonly keys: number; readonly done: number } | null;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly headPosition: string;
  readonly eventsChecked: number;
  readonly lastCheckpoint: { readonly position: string; readonly hash: string } | null;
  readonly coveredPosition: string | null;
  readonly uncoveredEvents: number;
  readonly problemCount: number;
  readonly firstProblem: {
    readonly position?: string;
    readonly kind?: string;
    readonly message?: string;
  } | null;
}

/** One event of the feed (watch's output item). */
export interface FeedEvent {
  readonly position: string;
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly meta: { readonly actor?: string; readonly reason?: string | null; readonly occurredAt?: string };
}

export function countByState(keys: readonly KeyInfo[]): Record<KeyState, number> {
  const counts = { ACTIVE: 0, INACTIVE: 0, DISABLED: 0, FAILED: 0, DESTROYED: 0 };
  for (const k of keys) if (k.state in counts) counts[k.state] += 1;
  return counts;
}
