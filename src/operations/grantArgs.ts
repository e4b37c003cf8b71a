import { KeyledgerError } from '../domain/errors.js';
import { type Grant, ROLES, type Role } from '../domain/grants.js';
import { parseCustodianArg } from './identityArgs.js';

/** How grants are written on the command line, in token requests and in the config (docs/server.md). */
const GRANT_FORM =
  'a grant is <role>:<custodians>, role one of admin, operate, encrypt, decrypt, audit, read; custodians * (all), a base64 custodian, or name=<plain name>';

/** `<role>:<pattern>`, e.g. `encrypt:name=tenant-1`, `audit:*`, `admin:Kg==`. */
export function parseGrant(text: string): Grant {
  const colon = text.indexOf(':');
  const role = colon === -1 ? text : text.slice(0, colon);
  const pattern = colon === -1 ? '' : text.slice(colon + 1);
  if (!(ROLES as readonly string[]).includes(role) || pattern.length === 0) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${GRANT_FORM}; got ${text.slice(0, 80)}`, {
      grant: text.slice(0, 80),
    });
  }
  return { role: role as Role, custodians: pattern === '*' ? '*' : parseCustodianArg(pattern) };
}
