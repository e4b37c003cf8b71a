import { z } from 'zod';
import { PRINCIPAL_NAME, parseRecordedGrant, TOKEN_ID } from './apiTokenFields.js';
import { sha256Hex } from './eventFields.js';
import { isoDatetime } from './fastEventChecks.js';

/**
 * The schemas of the API token stream's events (`<prefix>tokens`, projections/apiTokens.ts).
 * Apart from events.ts, which assembles every family into the one table stored events are parsed
 * by, so each family's file holds only its own.
 */

const tokenId = z.string().regex(TOKEN_ID);
/** A grant as formatGrant writes it; parsed back only when folded (projections/apiTokens.ts). */
const recordedGrant = z
  .string()
  .max(1024)
  .refine((text) => parseRecordedGrant(text) !== null, 'a grant is <role>:<* or canonical base64 custodian>');

export const apiTokenEventSchemas = {
  /**
   * An API token of the service (stream `<prefix>tokens`, docs/audit.md): who it speaks for and
   * what it may do. Only SHA-256 (hex) of the token's secret is recorded, never the token.
   */
  ApiTokenCreated: z.strictObject({
    tokenId,
    principal: z.string().regex(PRINCIPAL_NAME),
    grants: z.array(recordedGrant).min(1).max(64),
    hash: sha256Hex,
    expiresAt: isoDatetime().nullable(),
  }),
  /** The token no longer authenticates anyone; who revoked it is the event's actor. */
  ApiTokenRevoked: z.strictObject({ tokenId }),
} as const;
