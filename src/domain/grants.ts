import { KeyledgerError } from './errors.js';
import type { Custodian } from './identities.js';

/**
 * What a principal of the service may do: grants of a role over a custodian pattern. Deny by
 * default: a request is allowed only when some grant's role implies the operation's permission and
 * its pattern covers the operation's custodian. Ledger-wide operations (no custodian) need a grant
 * over every custodian.
 */
export const ROLES = ['admin', 'operate', 'encrypt', 'decrypt', 'audit', 'read'] as const;

/** A role, and the permission an operation requires (the operation table's `permission`). */
export type Role = (typeof ROLES)[number];
export type Permission = Role;

/** What each role may do: admin everything; operate and audit also read; the rest only themselves. */
const IMPLIES: { readonly [R in Role]: readonly Permission[] } = {
  admin: ROLES,
  operate: ['operate', 'read'],
  encrypt: ['encrypt'],
  decrypt: ['decrypt'],
  audit: ['audit', 'read'],
  read: ['read'],
};

/** `*`: every custodian (the global custodian `*` alone is written as its base64, `Kg==`). */
export type CustodianPattern = '*' | Custodian;

export interface Grant {
  readonly role: Role;
  readonly custodians: CustodianPattern;
}

/** A grant as written: `<role>:<custodians>` with the custodian in base64 or `*` (parseGrant reads it). */
export function formatGrant(grant: Grant): string {
  return `${grant.role}:${grant.custodians}`;
}

/** Whether the grants allow `permission` on `custodian` (base64; null: ledger-wide). */
export function allows(grants: readonly Grant[], permission: Permission, custodian: string | null): boolean {
  return grants.some(
    (g) =>
      IMPLIES[g.role].includes(permission) &&
      (g.custodians === '*' || (custodian !== null && g.custodians === custodian)),
  );
}

/** The custodians the grants allow `permission` on: all (`*`), or a set of base64 custodians. */
export function custodiansAllowed(
  grants: readonly Grant[],
  permission: Permission,
): '*' | ReadonlySet<string> {
  const allowed = new Set<string>();
  for (const g of grants) {
    if (!IMPLIES[g.role].includes(permission)) continue;
    if (g.custodians === '*') return '*';
    allowed.add(g.custodians);
  }
  return allowed;
}

/** Who calls the service, as an authenticator established it (token, JWT or client certificate). */
export interface Principal {
  readonly name: string;
  readonly grants: readonly Grant[];
  readonly method: 'token' | 'jwt' | 'mtls';
}

/** Refuses with ERR_FORBIDDEN unless the principal's grants allow `permission` on `custodian`. */
export function authorize(principal: Principal, permission: Permission, custodian: string | null): void {
  if (allows(principal.grants, permission, custodian)) return;
  throw new KeyledgerError(
    'ERR_FORBIDDEN',
    custodian === null
      ? `${principal.name} may not ${permission} ledger-wide (needs a grant over every custodian, *)`
      : `${principal.name} may not ${permission} for custodian ${custodian}`,
    { principal: principal.name, permission, custodian },
  );
}
