import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openLedger } from '../../src/host/openLedger.js';
import { cliEnv, cliHarness, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';

/**
 * API tokens driven as an operator would (docs/cli.md, "API tokens"): the built CLI, one process per
 * command, in a dev setup made by `init`. The token is printed once; what the store holds is read
 * back with a Ledger on the same file, as the coming server will.
 */
const TENANT = Buffer.from('tenant-1').toString('base64');
const TOKEN = /^klt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/;

const { keyledger, ok, refused } = cliHarness({ errorAtStart: true });
const dirs = tempDirs('keyledger-tokens-e2e-');
after(() => dirs.removeAll());

interface TokenJson {
  readonly token?: string;
  readonly tokenId: string;
  readonly principal: string;
  readonly grants: readonly string[];
  readonly createdBy: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
  readonly revokedBy: string | null;
}

/** What a process reading the same store (the server) finds for `token`. */
async function checkInStore(dir: string, token: string) {
  const opened = await openLedger({}, dir, cliEnv());
  try {
    return opened.ledger.tokens.check(token);
  } finally {
    await opened.close();
  }
}

describe('keyledger token create, list, revoke (built CLI)', () => {
  let dir: string;
  before(() => {
    requireBuiltCli();
    dir = dirs.make();
    ok(dir, ['init']);
  });

  it('create prints the token alone on its first line, then a note that it is shown once', async () => {
    const out = ok(dir, [
      'token',
      'create',
      '--principal',
      'ci',
      '--grant',
      'audit:*',
      '--reason',
      'nightly',
    ]);
    const [token, note, rest] = out.split('\n');
    assert.match(token ?? '', TOKEN);
    assert.match(note ?? '', /shown once/);
    assert.equal(rest, '');
    const check = await checkInStore(dir, token ?? '');
    assert.ok(check.ok);
    assert.deepEqual(check.principal, {
      name: 'ci',
      grants: [{ role: 'audit', custodians: '*' }],
      method: 'token',
    });
  });

  it('--json: an object whose token field holds it; grants repeat; list never shows a secret or hash', async () => {
    const created = JSON.parse(
      ok(dir, [
        'token',
        'create',
        '--principal',
        'app-1',
        '--grant',
        'encrypt:name=tenant-1',
        '--grant',
        `decrypt:${TENANT}`,
        '--expires',
        '90d',
        '--json',
      ]),
    ) as TokenJson;
    assert.match(created.token ?? '', TOKEN);
    assert.deepEqual(created.grants, [`encrypt:${TENANT}`, `decrypt:${TENANT}`]);
    assert.equal(created.createdBy, 'e2e');
    assert.ok(created.expiresAt !== null && Date.parse(created.expiresAt) > Date.now() + 89 * 86_400_000);
    const secret = (created.token ?? '').slice(21);

    const listed = JSON.parse(ok(dir, ['token', 'list', '--json'])) as TokenJson[];
    assert.deepEqual(
      listed.map((t) => t.principal),
      ['ci', 'app-1'],
    );
    const text = ok(dir, ['token', 'list']);
    assert.match(text, /^ID +PRINCIPAL +GRANTS/);
    assert.match(text, new RegExp(`${created.tokenId} +app-1 +encrypt:`));
    for (const out of [JSON.stringify(listed), text]) {
      assert.ok(!out.includes(secret), 'no secret');
      assert.ok(!/hash|[0-9a-f]{64}/i.test(out), 'no hash');
    }
    assert.equal((await checkInStore(dir, created.token ?? '')).ok, true);
  });

  it('revoke: the token no longer checks; list shows who revoked it', async () => {
    const created = JSON.parse(
      ok(dir, ['token', 'create', '--principal', 'old', '--grant', 'read:*', '--json']),
    ) as TokenJson;
    const revoked = JSON.parse(
      ok(dir, ['token', 'revoke', created.tokenId, '--json', '--actor', 'admin-2']),
    ) as TokenJson;
    assert.equal(revoked.revokedBy, 'admin-2');
    assert.match(ok(dir, ['token', 'list']), new RegExp(`${created.tokenId} .* by admin-2`));
    assert.deepEqual(await checkInStore(dir, created.token ?? ''), { ok: false, reason: 'revoked' });
    await refused(dir, ['token', 'revoke', created.tokenId], 'ERR_TOKEN_REVOKED');
  });

  it('the token stream is chained and checkpointed like any other: checkpoint, verify, export and verify --file pass', () => {
    assert.match(ok(dir, ['checkpoint']), /checkpoint #/);
    assert.match(ok(dir, ['verify']), /^verified/);
    ok(dir, ['audit', 'export', '--out', 'ledger.jsonl']);
    assert.match(ok(dir, ['verify', '--file', 'ledger.jsonl']), /^verified/);
  });

  it('bad input and unknown ids are refused with their codes (exit 2) and write nothing', async () => {
    await refused(
      dir,
      ['token', 'create', '--principal', 'x', '--grant', 'superuser:*'],
      'ERR_INVALID_ARGUMENT',
    );
    await refused(dir, ['token', 'create', '--principal', 'x', '--grant', 'read'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['token', 'create', '--principal', 'x'], 'ERR_INVALID_ARGUMENT');
    await refused(
      dir,
      ['token', 'create', '--principal', 'a\tb', '--grant', 'read:*'],
      'ERR_INVALID_ARGUMENT',
    );
    await refused(
      dir,
      ['token', 'create', '--principal', 'x', '--grant', 'read:*', '--expires', '2020-01-01T00:00:00Z'],
      'ERR_INVALID_ARGUMENT',
    );
    await refused(
      dir,
      ['token', 'create', '--principal', 'x', '--grant', 'read:*', '--expires', 'later'],
      'ERR_INVALID_ARGUMENT',
    );
    await refused(dir, ['token', 'revoke', '0123456789abcdef'], 'ERR_TOKEN_NOT_FOUND');
    await refused(dir, ['token', 'revoke', 'nope'], 'ERR_INVALID_ARGUMENT');
    // A whole token given in place of its id: refused without repeating its secret.
    const token = `klt_0123456789abcdef_${'s'.repeat(43)}`;
    const mistaken = await refused(dir, ['token', 'revoke', token], 'ERR_INVALID_ARGUMENT');
    const mistakenJson = keyledger(dir, ['token', 'revoke', token, '--json']);
    for (const stderr of [mistaken.stderr, mistakenJson.stderr]) assert.ok(!stderr.includes('ssss'), stderr);
    const json = keyledger(dir, ['token', 'revoke', '0123456789abcdef', '--json']);
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stderr) as { code: string }).code, 'ERR_TOKEN_NOT_FOUND');
  });
});
