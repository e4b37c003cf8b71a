import { PRINCIPAL_NAME, parseRecordedGrant, TOKEN_ID } from './apiTokenFields.js';
import { KeyledgerError } from './errors.js';
import type { EventOf } from './events.js';
import { formatGrant, type Grant } from './grants.js';

/**
 * The rules of the service's API tokens (stream `<prefix>tokens`): creating one records who it
 * speaks for, what it may do and the hash of its secret; revoking one ends it for good. Pure: the
 * caller brings the token id and hash (random, made in src/ledger/apiTokens.ts) and the time.
 */

/** What the decisions need of the tokens recorded (projections/apiTokens.ts's view is one). */
export interface ApiTokenState {
  readonly tokens: ReadonlyMap<string, { readonly revokedAt: string | null }>;
}

export interface CreateApiToken {
  readonly tokenId: string;
  readonly principal: string;
  readonly grants: readonly Grant[];
  /** SHA-256 (hex) of the token's secret. */
  readonly hash: string;
  /** When the token stops working; null: never (until revoked). */
  readonly expiresAt: Date | null;
}

/** More grants than anyone writes by hand; a bound on the event's size. */
export const MAX_TOKEN_GRANTS = 64;

const SHA256_HEX = /^[0-9a-f]{64}$/;

function invalid(message: string, details: Readonly<Record<string, string | number | null>>): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, details);
}

export function decideCreateApiToken(
  state: ApiTokenState,
  command: CreateApiToken,
  now: Date,
): [EventOf<'ApiTokenCreated'>] {
  const { tokenId, principal, hash, expiresAt } = command;
  // Id and hash are made by the ledger, never typed by a user: a wrong one is a bug of the caller.
  if (!TOKEN_ID.test(tokenId)) throw new TypeError('a token id is 16 lowercase hex characters');
  if (!SHA256_HEX.test(hash)) throw new TypeError('a token hash is SHA-256 in lowercase hex');
  if (state.tokens.has(tokenId)) throw new TypeError(`token id ${tokenId} is taken; pick another`);
  if (!PRINCIPAL_NAME.test(principal)) {
    throw invalid('a principal is 1 to 128 printable characters (no control characters)', {
      principal: principal.slice(0, 128),
    });
  }
  // Written as formatGrant writes them, each once, in the order given.
  const grants = [...new Set(command.grants.map(formatGrant))];
  if (grants.length === 0)
    throw invalid('a token needs at least one grant (--grant <role>:<custodians>)', { grant: null });
  if (grants.length > MAX_TOKEN_GRANTS) {
    throw invalid(`a token holds at most ${MAX_TOKEN_GRANTS} grants`, { grants: grants.length });
  }
  for (const grant of grants) {
    if (parseRecordedGrant(grant) === null) throw new TypeError(`grant ${grant} was not parsed (parseGrant)`);
  }
  if (expiresAt !== null && !(expiresAt.getTime() > now.getTime())) {
    throw invalid('a token’s expiry must be in the future', {
      expires: Number.isNaN(expiresAt.getTime()) ? null : expiresAt.toISOString(),
    });
  }
  return [
    {
      type: 'ApiTokenCreated',
      data: { tokenId, principal, grants, hash, expiresAt: expiresAt?.toISOString() ?? null },
    },
  ];
}

export function decideRevokeApiToken(state: ApiTokenState, tokenId: string): [EventOf<'ApiTokenRevoked'>] {
  const token = state.tokens.get(tokenId);
  if (token === undefined) {
    throw new KeyledgerError('ERR_TOKEN_NOT_FOUND', `no API token has id ${tokenId.slice(0, 20)}`, {
      tokenId: tokenId.slice(0, 20),
    });
  }
  if (token.revokedAt !== null) {
    throw new KeyledgerError('ERR_TOKEN_REVOKED', `API token ${tokenId} was revoked at ${token.revokedAt}`, {
      tokenId,
    });
  }
  return [{ type: 'ApiTokenRevoked', data: { tokenId } }];
}
