/**
 * The principal's grants as whoami answers them (`role:custodians`), and what they allow: the same
 * rules as the server's (src/domain/grants.ts). The console only hides what would be refused; the
 * server decides.
 */
export type Role = 'admin' | 'operate' | 'encrypt' | 'decrypt' | 'audit' | 'read';

const IMPLIES: Readonly<Record<Role, readonly Role[]>> = {
  admin: ['admin', 'operate', 'encrypt', 'decrypt', 'audit', 'read'],
  operate: ['operate', 'read'],
  encrypt: ['encrypt'],
  decrypt: ['decrypt'],
  audit: ['audit', 'read'],
  read: ['read'],
};

export interface Grant {
  readonly role: Role;
  /** `*` or a base64 custodian. */
  readonly custodians: string;
}

export function parseGrants(texts: readonly string[] | null): Grant[] {
  // null: a host where no grant applies (never a server); treat it as everything.
  if (texts === null) return [{ role: 'admin', custodians: '*' }];
  return texts.flatMap((text) => {
    const at = text.indexOf(':');
    const role = text.slice(0, at) as Role;
    return at > 0 && role in IMPLIES ? [{ role, custodians: text.slice(at + 1) }] : [];
  });
}

export class Grants {
  constructor(readonly list: readonly Grant[]) {}

  /** Whether `permission` is allowed on `custodian` (null: ledger-wide, needs `*`). */
  may(permission: Role, custodian: string | null): boolean {
    return this.list.some(
      (g) =>
        IMPLIES[g.role].includes(permission) &&
        (g.custodians === '*' || (custodian !== null && g.custodians === custodian)),
    );
  }

  /** The custodians `permission` is allowed on: `*` or a list of base64 custodians. */
  custodians(permission: Role): '*' | string[] {
    const found: string[] = [];
    for (const g of this.list) {
      if (!IMPLIES[g.role].includes(permission)) continue;
      if (g.custodians === '*') return '*';
      if (!found.includes(g.custodians)) found.push(g.custodians);
    }
    return found;
  }
}
