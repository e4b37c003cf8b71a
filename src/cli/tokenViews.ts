import type { OutputOf } from '../operations/operations.js';
import { escapeValue, table } from './output.js';
import type { View } from './views.js';

/** How `keyledger token …` shows its results (docs/cli.md, "API tokens"). */

type TokenInfo = OutputOf<'token-list'>[number];

function tokenTable(tokens: readonly TokenInfo[]): string {
  return table(
    ['ID', 'PRINCIPAL', 'GRANTS', 'CREATED', 'BY', 'EXPIRES', 'REVOKED'],
    tokens.map((t) => [
      t.tokenId,
      t.principal,
      t.grants.join(' '),
      t.createdAt,
      t.createdBy,
      t.expiresAt ?? 'never',
      t.revokedAt === null ? '' : `${t.revokedAt} by ${t.revokedBy ?? '?'}`,
    ]),
  );
}

export const TOKEN_VIEWS: {
  readonly 'token-create': View<OutputOf<'token-create'>>;
  readonly 'token-list': View<OutputOf<'token-list'>>;
  readonly 'token-revoke': View<OutputOf<'token-revoke'>>;
} = {
  // The token alone on the first line (easy to copy or to read with `head -1`), then the note.
  'token-create': {
    text: (r) =>
      `${r.token}\nAPI token ${r.tokenId} for ${escapeValue(r.principal)}: shown once only; the ledger keeps only its hash\n`,
  },
  'token-list': { text: tokenTable },
  'token-revoke': {
    text: (r) => `API token ${r.tokenId} (${escapeValue(r.principal)}) revoked at ${r.revokedAt}\n`,
  },
};
