import { type Grant, ROLES, type Role } from './grants.js';
import { type Custodian, isCanonicalCustodian } from './identities.js';

/**
 * The fields of an API token as the ledger records them (apiTokenEventSchemas.ts checks them on every read, the
 * decider before every write), so that what was written is exactly what is read back.
 */

/** A token's id: 16 lowercase hex characters, random; it is public (listed, named in events). */
export const TOKEN_ID = /^[0-9a-f]{16}$/;

/**
 * A principal's name: 1 to 128 printable characters (code points); no control or format
 * characters, no line or paragraph separators: the name shows in listings, logs and event actors.
 */
export const PRINCIPAL_NAME = /^[^\p{C}\p{Zl}\p{Zp}]{1,128}$/u;

/** A grant as recorded: formatGrant's `<role>:<custodians>`, the custodian canonical base64 or `*`. */
export function parseRecordedGrant(text: string): Grant | null {
  const colon = text.indexOf(':');
  if (colon === -1) return null;
  const role = text.slice(0, colon);
  const custodians = text.slice(colon + 1);
  if (!(ROLES as readonly string[]).includes(role)) return null;
  if (custodians !== '*' && !isCanonicalCustodian(custodians)) return null;
  return { role: role as Role, custodians: custodians as '*' | Custodian };
}
