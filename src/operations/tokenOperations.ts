import { z } from 'zod';
import { PRINCIPAL_NAME, TOKEN_ID } from '../domain/apiTokenFields.js';
import { KeyledgerError } from '../domain/errors.js';
import { actedBy } from './adminOperations.js';
import { parseGracePeriod } from './gracePeriod.js';
import { parseGrant } from './grantArgs.js';
import { defineOperation } from './operation.js';
import { plain } from './plain.js';

/**
 * The service's API tokens (docs/cli.md, "API tokens"): made, listed and revoked by an admin. A new
 * token is in create's answer only; the ledger records the hash of its secret, never the token.
 */

const EXPIRES_FORM =
  '--expires takes an ISO 8601 date-time with a zone (2027-03-01T00:00:00Z) or a duration like 90d, 36h or 2w';
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

type Expiry = { readonly at: Date } | { readonly inMs: number } | null;

function parseExpiry(text: string | undefined): Expiry {
  if (text === undefined) return null;
  const ms = parseGracePeriod(text);
  if (ms !== null) return { inMs: ms };
  const at = DATE_TIME.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime())) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', EXPIRES_FORM, { expires: text.slice(0, 64) });
  }
  return { at };
}

export const tokenCreate = defineOperation({
  name: 'token-create',
  summary: 'make an API token for the service; it is printed once, only its hash is recorded',
  description:
    'Prints klt_<id>_<secret> once (with --json: the object’s token field). The ledger records the\nprincipal, the grants, the expiry and the SHA-256 of the secret (ApiTokenCreated), never the token.',
  input: z.strictObject({
    principal: z.string().describe('who the token speaks for: 1 to 128 printable characters'),
    grant: z
      .array(z.string())
      .min(1, '--grant <role>:<custodians> is required (repeatable)')
      .describe('<role>:<custodians>, e.g. encrypt:name=tenant-1 or audit:* (repeatable, at least one)'),
    expires: z
      .string()
      .describe(
        'when it stops working: an ISO date-time with a zone, or a duration like 90d (default: never)',
      )
      .optional(),
  }),
  permission: 'admin',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: {
    command: 'token create',
    placeholders: { principal: 'name', grant: 'role>:<custodians', expires: 'when' },
  },
  prepare: (input) => {
    if (!PRINCIPAL_NAME.test(input.principal)) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        '--principal takes 1 to 128 printable characters (no control characters)',
        { principal: input.principal.slice(0, 128) },
      );
    }
    return {
      principal: input.principal,
      grants: input.grant.map(parseGrant),
      expires: parseExpiry(input.expires),
    };
  },
  async run({ principal, grants, expires }, host) {
    const ledger = await host.ledger();
    const created = await ledger.tokens.create(
      {
        principal,
        grants,
        expiresAt: expires !== null && 'at' in expires ? expires.at : null,
        expiresInMs: expires !== null && 'inMs' in expires ? expires.inMs : undefined,
      },
      actedBy(host),
    );
    return plain(created);
  },
});

export const tokenList = defineOperation({
  name: 'token-list',
  summary: 'every API token: id, principal, grants, expiry, revocation (never a secret or hash)',
  input: z.strictObject({}),
  permission: 'admin',
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { command: 'token list' },
  prepare: () => null,
  async run(_p, host) {
    return plain((await host.ledger()).tokens.list());
  },
});

export const tokenRevoke = defineOperation({
  name: 'token-revoke',
  summary: 'revoke an API token: it authenticates no one from then on',
  input: z.strictObject({
    id: z.string().describe('the token’s id (16 hex digits, as token list shows it)'),
  }),
  permission: 'admin',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { command: 'token revoke', positionals: ['id'] },
  prepare: (input) => {
    if (!TOKEN_ID.test(input.id)) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'a token id is 16 lowercase hex digits', {
        // At most `klt_` and an id: a whole token given by mistake must not be echoed.
        id: input.id.slice(0, 20),
      });
    }
    return input.id;
  },
  async run(id, host) {
    return plain(await (await host.ledger()).tokens.revoke(id, actedBy(host)));
  },
});

export const TOKEN_OPERATIONS = [tokenCreate, tokenList, tokenRevoke] as const;
