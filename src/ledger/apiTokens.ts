import { createHash, randomBytes } from 'node:crypto';
import {
  type ApiTokenRecord,
  type ApiTokensView,
  emptyApiTokensView,
  evolveApiTokens,
} from '../../projections/apiTokens.js';
import { constantTimeEqualStrings } from '../crypto/constantTime.js';
import { TOKEN_ID } from '../domain/apiTokenFields.js';
import { decideCreateApiToken, decideRevokeApiToken } from '../domain/decideApiToken.js';
import { KeyledgerError } from '../domain/errors.js';
import { API_TOKEN_EVENT_TYPES, parseEventOf } from '../domain/events.js';
import { formatGrant, type Grant, type Principal } from '../domain/grants.js';
import { decideAndAppend, expectedAfter, type Journal, type Loaded } from '../journal/decideAndAppend.js';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { OperationOptions } from './operationOptions.js';

/** What checking a presented token found: who it speaks for, or why it does not. */
export type TokenCheck =
  | { readonly ok: true; readonly principal: Principal; readonly tokenId: string }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown' | 'revoked' | 'expired' };

/** A token as listed: everything but its secret and the secret's hash. */
export interface TokenInfo {
  readonly tokenId: string;
  readonly principal: string;
  /** As formatGrant writes them: `<role>:<custodians>`. */
  readonly grants: readonly string[];
  readonly createdAt: string;
  readonly createdBy: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
  readonly revokedBy: string | null;
}

export interface CreatedToken extends TokenInfo {
  /** `klt_<tokenId>_<secret>`: shown to its creator once; the ledger keeps only the secret's hash. */
  readonly token: string;
  readonly position: bigint;
}

export interface RevokedToken extends TokenInfo {
  readonly position: bigint;
}

export interface CreateTokenRequest {
  readonly principal: string;
  readonly grants: readonly Grant[];
  /** When the token stops working (default: never, until revoked). */
  readonly expiresAt?: Date | null;
  /** Or: this many milliseconds after the time the creation event carries (`90d` on the CLI). */
  readonly expiresInMs?: number;
}

interface ApiTokensDeps {
  readonly journal: Journal;
  readonly names: StreamNames;
  readonly projector: LedgerProjector;
  readonly context: (options: OperationOptions | undefined) => OperationContext;
}

/** `klt_` + 16 hex (the id) + `_` + 43 base64url characters (32 random bytes). */
const TOKEN = /^klt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const SECRET_BYTES = 32;
/** How much of a malformed id an error repeats: never as far as a token's secret. */
const ECHOED = 20;
/** Compared with when the id is unknown: no secret's SHA-256 is all zeros in practice. */
const NO_HASH = '0'.repeat(64);

function newTokenId(): string {
  return randomBytes(8).toString('hex');
}

/** SHA-256 (hex) over the secret as written in the token (its 43 base64url characters). */
function secretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

function infoOf(record: ApiTokenRecord): TokenInfo {
  return {
    tokenId: record.tokenId,
    principal: record.principal,
    grants: record.grants.map(formatGrant),
    createdAt: record.createdAt,
    createdBy: record.createdBy,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    revokedBy: record.revokedBy,
  };
}

/**
 * The service's API tokens. The ledger is the token store: creating and revoking are events on the
 * token stream (written through decideAndAppend, rules in src/domain/decideApiToken.ts), and
 * checks read this process's projector, so a token created or revoked by any process on the same
 * store counts here as soon as this process has applied the event (`ledger.waitForPosition`).
 */
export class ApiTokens {
  readonly #d: ApiTokensDeps;

  constructor(deps: ApiTokensDeps) {
    this.#d = deps;
  }

  /**
   * Who `token` speaks for, or why it does not: `malformed` (not a token), `unknown` (no such id,
   * or a wrong secret: the two are not told apart), `revoked`, `expired` (from `now` on). The secret
   * is checked (in constant time) before anything else is said about the id.
   */
  check(token: string, now: Date = new Date()): TokenCheck {
    const match = TOKEN.exec(token);
    if (match === null) return { ok: false, reason: 'malformed' };
    const [, tokenId = '', secret = ''] = match;
    const record = this.#d.projector.apiTokens.tokens.get(tokenId);
    // The hash is computed and compared whether or not the id is known, so the time taken tells
    // nobody which ids exist.
    const matches = constantTimeEqualStrings(secretHash(secret), record?.hash ?? NO_HASH);
    if (record === undefined || !matches) return { ok: false, reason: 'unknown' };
    if (record.revokedAt !== null) return { ok: false, reason: 'revoked' };
    if (record.expiresAt !== null && now.getTime() >= Date.parse(record.expiresAt)) {
      return { ok: false, reason: 'expired' };
    }
    return {
      ok: true,
      tokenId,
      principal: { name: record.principal, grants: record.grants, method: 'token' },
    };
  }

  /** Every token ever created, in the order created, revoked and expired ones included. */
  list(): TokenInfo[] {
    return [...this.#d.projector.apiTokens.tokens.values()].map(infoOf);
  }

  /**
   * Makes a new random token for `principal` with `grants` and records ApiTokenCreated (the secret's
   * hash, never the token). The token is in the answer only: it cannot be shown again. Refused
   * with ERR_INVALID_ARGUMENT for a bad principal name, no grants, or an expiry not in the future.
   */
  async create(request: CreateTokenRequest, options?: OperationOptions): Promise<CreatedToken> {
    this.#requireInitialised();
    const secret = randomBytes(SECRET_BYTES).toString('base64url');
    let tokenId = newTokenId();
    const written = await decideAndAppend(this.#d.journal, {
      stream: this.#d.names.tokens,
      context: this.#d.context(options),
      load: () => this.#load(),
      decide: (state, now) => {
        // 64 random bits: a clash is all but impossible, and cheap to step around.
        while (state.tokens.has(tokenId)) tokenId = newTokenId();
        return decideCreateApiToken(
          state,
          {
            tokenId,
            principal: request.principal,
            grants: request.grants,
            hash: secretHash(secret),
            expiresAt:
              request.expiresInMs === undefined
                ? (request.expiresAt ?? null)
                : new Date(now.getTime() + request.expiresInMs),
          },
          now,
        );
      },
    });
    return { ...this.#info(tokenId), token: `klt_${tokenId}_${secret}`, position: written.position ?? 0n };
  }

  /**
   * Records ApiTokenRevoked: the token authenticates no one from then on, in every process once
   * it has applied the event. ERR_TOKEN_NOT_FOUND, ERR_TOKEN_REVOKED; ERR_INVALID_ARGUMENT for
   * something that is not a token id.
   */
  async revoke(tokenId: string, options?: OperationOptions): Promise<RevokedToken> {
    if (!TOKEN_ID.test(tokenId)) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'a token id is 16 lowercase hex characters', {
        // At most `klt_` and an id: a whole token given by mistake must not be echoed.
        tokenId: tokenId.slice(0, ECHOED),
      });
    }
    this.#requireInitialised();
    const written = await decideAndAppend(this.#d.journal, {
      stream: this.#d.names.tokens,
      context: this.#d.context(options),
      load: () => this.#load(),
      decide: (state) => decideRevokeApiToken(state, tokenId),
    });
    return { ...this.#info(tokenId), position: written.position ?? 0n };
  }

  /**
   * The token stream folded for a decision: its own events, not the view, which may lag a write of
   * another process; the append expects the revision folded, so a lost race is decided again.
   */
  async #load(): Promise<Loaded<ApiTokensView>> {
    const stream = this.#d.names.tokens;
    let state = emptyApiTokensView();
    const recorded = await this.#d.journal.store.readStream(stream);
    for (const event of recorded) state = evolveApiTokens(state, parseEventOf(event, API_TOKEN_EVENT_TYPES));
    return { state, expected: expectedAfter(recorded.at(-1)?.revision ?? null) };
  }

  /** As for every other write: a ledger without a system key (run init) takes none. */
  #requireInitialised(): void {
    if (this.#d.projector.latestSystemKey() === null) {
      throw new KeyledgerError(
        'ERR_LEDGER_NOT_INITIALISED',
        'the ledger has no system key yet; run init',
        {},
      );
    }
  }

  /** A token this process has applied (the write path waited for it). */
  #info(tokenId: string): TokenInfo {
    const record = this.#d.projector.apiTokens.tokens.get(tokenId);
    if (record === undefined) throw new TypeError(`token ${tokenId} is not in this process's view`);
    return infoOf(record);
  }
}
