import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeyledgerError } from '../../src/domain/errors.js';
import {
  allows,
  authorize,
  custodiansAllowed,
  formatGrant,
  type Principal,
} from '../../src/domain/grants.js';
import { parseGrant } from '../../src/operations/grantArgs.js';
import { OPERATIONS } from '../../src/operations/operations.js';

const TENANT_1 = Buffer.from('tenant-1').toString('base64');
const TENANT_2 = Buffer.from('tenant-2').toString('base64');
const GLOBAL = Buffer.from('*').toString('base64');

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isKeyledgerError(error) ? error.code : 'not a KeyledgerError';
  }
  return undefined;
}

describe('grants: role × custodian pattern, deny by default', () => {
  it('given the written forms, parseGrant reads role and pattern (name=, base64, *)', () => {
    assert.deepEqual(parseGrant('encrypt:name=tenant-1'), { role: 'encrypt', custodians: TENANT_1 });
    assert.deepEqual(parseGrant(`decrypt:${TENANT_2}`), { role: 'decrypt', custodians: TENANT_2 });
    assert.deepEqual(parseGrant('audit:*'), { role: 'audit', custodians: '*' });
    assert.deepEqual(parseGrant(`admin:${GLOBAL}`), { role: 'admin', custodians: GLOBAL });
    assert.equal(formatGrant(parseGrant('read:name=tenant-1')), `read:${TENANT_1}`);
  });

  it('given a bad grant, it is ERR_INVALID_ARGUMENT (unknown role, no pattern, bad custodian)', () => {
    for (const text of ['root:*', 'encrypt', 'encrypt:', 'read:name=', 'read:not base64!'])
      assert.match(code(() => parseGrant(text)) ?? '', /^ERR_INVALID_(ARGUMENT|CUSTODIAN)$/, text);
  });

  it('given no grants, nothing is allowed', () => {
    for (const op of OPERATIONS) assert.equal(allows([], op.permission, TENANT_1), false, op.name);
  });

  it('admin implies everything; operate and audit imply read; encrypt does not imply decrypt', () => {
    const on = (role: string) => [parseGrant(`${role}:name=tenant-1`)];
    assert.equal(allows(on('admin'), 'decrypt', TENANT_1), true);
    assert.equal(allows(on('operate'), 'read', TENANT_1), true);
    assert.equal(allows(on('operate'), 'admin', TENANT_1), false);
    assert.equal(allows(on('audit'), 'read', TENANT_1), true);
    assert.equal(allows(on('audit'), 'operate', TENANT_1), false);
    assert.equal(allows(on('encrypt'), 'decrypt', TENANT_1), false);
    assert.equal(allows(on('read'), 'audit', TENANT_1), false);
  });

  it('a grant over one custodian covers only it; ledger-wide operations need *', () => {
    const grants = [parseGrant('admin:name=tenant-1')];
    assert.equal(allows(grants, 'operate', TENANT_1), true);
    assert.equal(allows(grants, 'operate', TENANT_2), false);
    assert.equal(allows(grants, 'admin', null), false);
    assert.equal(allows([parseGrant('admin:*')], 'admin', null), true);
    // The global custodian is a custodian like any other: Kg== grants it alone.
    assert.equal(allows([parseGrant(`read:${GLOBAL}`)], 'read', TENANT_1), false);
    assert.equal(allows([parseGrant(`read:${GLOBAL}`)], 'read', GLOBAL), true);
  });

  it('custodiansAllowed answers * or the set a permission is granted over', () => {
    assert.equal(custodiansAllowed([parseGrant('audit:*')], 'audit'), '*');
    assert.deepEqual(
      custodiansAllowed([parseGrant('audit:name=tenant-1'), parseGrant('encrypt:name=tenant-2')], 'audit'),
      new Set([TENANT_1]),
    );
    assert.deepEqual(custodiansAllowed([parseGrant('read:*')], 'audit'), new Set());
  });

  it('authorize refuses with ERR_FORBIDDEN naming principal, permission and custodian', () => {
    const principal: Principal = {
      name: 'app-1',
      grants: [parseGrant('encrypt:name=tenant-1')],
      method: 'token',
    };
    authorize(principal, 'encrypt', TENANT_1);
    try {
      authorize(principal, 'decrypt', TENANT_1);
      assert.fail('allowed');
    } catch (error) {
      assert.ok(isKeyledgerError(error));
      assert.equal(error.code, 'ERR_FORBIDDEN');
      assert.deepEqual(error.details, { principal: 'app-1', permission: 'decrypt', custodian: TENANT_1 });
    }
  });
});
