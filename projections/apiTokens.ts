import { z } from 'zod';
import { parseRecordedGrant } from '../src/domain/apiTokenFields.js';
import { formatGrant, type Grant } from '../src/domain/grants.js';
import type { JsonValue, LedgerEvent } from '../src/domain/index.js';

/** An API token as the ledger knows it: the hash of its secret, never the token. */
export interface ApiTokenRecord {
  readonly tokenId: string;
  readonly principal: string;
  readonly grants: readonly Grant[];
  /** SHA-256 (hex) of the token's secret. */
  readonly hash: string;
  readonly createdAt: string;
  /** The actor of ApiTokenCreated. */
  readonly createdBy: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
  readonly revokedBy: string | null;
}

/** Every token ever created, by id, revoked ones included (so a revoked id stays known). */
export interface ApiTokensView {
  readonly tokens: ReadonlyMap<string, ApiTokenRecord>;
}

export function emptyApiTokensView(): ApiTokensView {
  return { tokens: new Map() };
}

/**
 * Folds the token events; every other event leaves the view as it is. Tokens are few and change
 * rarely, so a change copies the map and the view stays a value.
 */
export function evolveApiTokens(view: ApiTokensView, event: LedgerEvent): ApiTokensView {
  if (event.type === 'ApiTokenCreated') {
    const d = event.data;
    // Ids are random and the decider refuses a known one; a duplicate can only come from an edited
    // store, and the first token keeps its id.
    if (view.tokens.has(d.tokenId)) return view;
    const grants = d.grants.map(parseRecordedGrant).filter((g): g is Grant => g !== null);
    const record: ApiTokenRecord = {
      tokenId: d.tokenId,
      principal: d.principal,
      grants,
      hash: d.hash,
      createdAt: event.meta.occurredAt,
      createdBy: event.meta.actor,
      expiresAt: d.expiresAt,
      revokedAt: null,
      revokedBy: null,
    };
    return { tokens: new Map(view.tokens).set(d.tokenId, record) };
  }
  if (event.type === 'ApiTokenRevoked') {
    const known = view.tokens.get(event.data.tokenId);
    if (known === undefined || known.revokedAt !== null) return view;
    const revoked = { ...known, revokedAt: event.meta.occurredAt, revokedBy: event.meta.actor };
    return { tokens: new Map(view.tokens).set(known.tokenId, revoked) };
  }
  return view;
}

/** Bump whenever the view's shape or the fold's meaning changes: older snapshots are then replayed. */
export const API_TOKENS_SNAPSHOT_VERSION = 1;

const snapshotSchema = z.strictObject({
  version: z.literal(API_TOKENS_SNAPSHOT_VERSION),
  tokens: z.array(
    z.strictObject({
      tokenId: z.string(),
      principal: z.string(),
      grants: z.array(z.string()),
      hash: z.string(),
      createdAt: z.string(),
      createdBy: z.string(),
      expiresAt: z.string().nullable(),
      revokedAt: z.string().nullable(),
      revokedBy: z.string().nullable(),
    }),
  ),
});

export function apiTokensToSnapshot(view: ApiTokensView): JsonValue {
  return {
    version: API_TOKENS_SNAPSHOT_VERSION,
    tokens: [...view.tokens.values()].map((t) => ({
      ...t,
      grants: t.grants.map(formatGrant),
    })),
  };
}

/** The view a snapshot holds, or null when the snapshot is not usable (then the events are replayed). */
export function apiTokensFromSnapshot(state: JsonValue): ApiTokensView | null {
  const parsed = snapshotSchema.safeParse(state);
  if (!parsed.success) return null;
  const tokens = new Map<string, ApiTokenRecord>();
  for (const t of parsed.data.tokens) {
    const grants = t.grants.map(parseRecordedGrant);
    if (grants.some((g) => g === null)) return null;
    tokens.set(t.tokenId, { ...t, grants: grants as Grant[] });
  }
  return { tokens };
}
