import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI_BIN, cliHarness, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { keytoolListEntries, requireKeytool } from '../helpers/keytool.js';

const TENANT = Buffer.from('tenant-1').toString('base64');

const { ok, refused } = cliHarness();
const dirs = tempDirs('keyledger-e2e-');
const tempDir = () => dirs.make();

before(() => {
  requireBuiltCli();
  requireKeytool();
});
after(() => dirs.removeAll());

describe('keyledger CLI, dev setup from init', () => {
  let dir: string;
  before(() => {
    dir = tempDir();
  });

  it('init writes a config, a keytool-readable keystore with the system key, and a private password file', () => {
    const out = ok(dir, ['init']);
    assert.match(out, /system key +#1 identity [0-9a-f]{16}/);
    const password = readFileSync(join(dir, '.keyledger', 'keystore.pass'), 'utf8').trim();
    const entries = keytoolListEntries(join(dir, '.keyledger', 'keystore.p12'), password);
    assert.deepEqual(entries, [{ alias: 'keyledger-system-key', type: 'SecretKeyEntry' }]);
    assert.equal(statSync(join(dir, '.keyledger', 'keystore.pass')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, '.keyledger', 'keystore.p12')).mode & 0o777, 0o600);
    assert.ok(!out.includes(password), 'the password is never printed');
  });

  it('init twice is refused and leaves the keystore alone', async () => {
    const keystore = readFileSync(join(dir, '.keyledger', 'keystore.p12'));
    await refused(dir, ['init'], 'ERR_LEDGER_ALREADY_INITIALISED', 2);
    assert.deepEqual(readFileSync(join(dir, '.keyledger', 'keystore.p12')), keystore);
  });

  it('walks every command: enable, show, rotate, disable, re-enable, refresh, set, cache, history', () => {
    const scope = `${TENANT}:orders`;
    ok(dir, ['enable-key-management', scope, '--reason', 'onboarding']);
    const shown = JSON.parse(ok(dir, ['show-key-status', scope, '--json'])) as Record<string, string>[];
    assert.equal(shown.length, 1);
    const [key] = shown;
    for (const field of ['custodian', 'namespace', 'state', 'metadataHash', 'checksum', 'refreshedAt']) {
      assert.ok(key && field in key, `--json has ${field}`);
    }
    assert.equal(key?.custodian, TENANT);
    assert.equal(key?.namespace, 'orders');
    assert.equal(key?.state, 'ACTIVE');

    const rotated = JSON.parse(ok(dir, ['rotate-managed-key', scope, '--json'])) as {
      key: { metadataHash: string };
    };
    assert.notEqual(rotated.key.metadataHash, key?.metadataHash);
    const table = ok(dir, ['show-key-status', scope]);
    assert.match(table, /INACTIVE/);
    assert.match(table, /ACTIVE/);

    ok(dir, ['disable-managed-key', scope, key?.metadataHash ?? '']);
    ok(dir, ['enable-managed-key', scope, key?.metadataHash ?? '']);
    ok(dir, ['refresh-managed-keys', scope]);
    ok(dir, ['set-managed-key', scope, key?.metadata ?? '']);
    const states = (
      JSON.parse(ok(dir, ['show-key-status', scope, '--json'])) as { metadataHash: string; state: string }[]
    ).map((k) => [k.metadataHash, k.state]);
    assert.deepEqual(states, [
      [key?.metadataHash, 'ACTIVE'],
      [rotated.key.metadataHash, 'INACTIVE'],
    ]);
    ok(dir, ['eject-cache-entry', scope, '--key', key?.metadataHash ?? '']);
    ok(dir, ['clear-cache']);
    assert.match(ok(dir, ['rotate-stk']), /unchanged/);
    ok(dir, ['disable-key-management', scope]);

    const history = JSON.parse(ok(dir, ['history', scope, '--json'])) as {
      type: string;
      actor: string;
      reason: string | null;
    }[];
    assert.deepEqual(
      history.map((h) => h.type),
      [
        'KeyManagementEnabled',
        'ManagedKeyRotated',
        'ManagedKeyDisabled',
        'ManagedKeyReenabled',
        'ManagedKeyRefreshed',
        'ManagedKeyRefreshed',
        'ManagedKeySet',
        'KeyManagementDisabled',
      ],
    );
    assert.equal(history[0]?.actor, 'e2e');
    assert.equal(history[0]?.reason, 'onboarding');
    assert.match(ok(dir, ['history', scope]), /KeyManagementDisabled/);
  });

  it('resolve shows which candidate scope and key new data would use', async () => {
    ok(dir, ['enable-key-management', '*']);
    ok(dir, ['enable-key-management', `${TENANT}:billing`]);
    const byTable = JSON.parse(
      ok(dir, [
        'resolve',
        TENANT,
        '--namespace',
        'billing/cf',
        '--namespace',
        'billing',
        '--namespace',
        '*',
        '--json',
      ]),
    ) as { candidate: number; namespace: string; state: string };
    assert.deepEqual([byTable.candidate, byTable.namespace, byTable.state], [1, 'billing', 'ACTIVE']);
    ok(dir, ['enable-key-management', TENANT]);
    const fallback = JSON.parse(
      ok(dir, ['resolve', TENANT, '--namespace', 'invoices', '--namespace', '*', '--json']),
    ) as {
      candidate: number;
      custodian: string;
      namespace: string;
    };
    assert.deepEqual([fallback.candidate, fallback.custodian, fallback.namespace], [1, TENANT, '*']);
    assert.match(ok(dir, ['resolve', TENANT, '--namespace', 'billing']), /1 of 1 +dGVuYW50LTE=:billing/);
    // The generated provider does not look keys up dynamically: an unknown scope stays unknown.
    await refused(
      dir,
      ['resolve', Buffer.from('nobody').toString('base64'), '--namespace', 'x'],
      'ERR_NO_ACTIVE_KEY',
      1,
    );
  });

  it('survives being piped into head', () => {
    const result = spawnSync('sh', ['-c', `node ${CLI_BIN} history ${TENANT}:orders | head -1`], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(result.status, 0);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /POSITION/);
  });

  it('bad input exits 2 with the error code and writes nothing', async () => {
    const scope = `${TENANT}:orders`;
    const hash =
      (JSON.parse(ok(dir, ['show-key-status', scope, '--json'])) as { metadataHash: string }[])[0]
        ?.metadataHash ?? '';
    ok(dir, ['enable-key-management', scope]);
    ok(dir, ['disable-managed-key', scope, hash]);
    await refused(dir, ['enable-key-management', 'not base64!'], 'ERR_INVALID_CUSTODIAN', 2);
    await refused(dir, ['enable-key-management', ':orders'], 'ERR_INVALID_CUSTODIAN', 2);
    await refused(dir, ['enable-key-management', `${TENANT}:${'n'.repeat(256)}`], 'ERR_INVALID_NAMESPACE', 2);
    await refused(dir, ['disable-managed-key', scope, 'A'.repeat(43)], 'ERR_KEY_NOT_FOUND', 2);
    await refused(dir, ['disable-managed-key', scope, hash], 'ERR_KEY_ALREADY_DISABLED', 2);
    await refused(
      dir,
      ['rotate-managed-key', `${TENANT}:never-enabled`],
      'ERR_KEY_MANAGEMENT_NOT_ENABLED',
      2,
    );
    await refused(dir, ['rotate-managed-key'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['no-such-command'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['show-key-status', scope, '--bogus'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['show-key-status', scope, '--store', 'ftp://x'], 'ERR_INVALID_STORE_URL', 2);
  });

  it('an option the command does not take is refused, not ignored, wherever it stands', async () => {
    const scope = `${TENANT}:orders`;
    await refused(dir, ['rotate-managed-key', scope, '--key', 'x'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['rotate-managed-key', scope, '--grace', '1d'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['enable-key-management', scope, '--at', '1'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['init', '--since', '2026-01-01'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['destroy-due-keys', '--aad', 'x'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['history', scope, '--namespace', 'x'], 'ERR_INVALID_ARGUMENT', 2);
    // A value-taking option before the command: its value is not taken for the command.
    const asOf = JSON.parse(ok(dir, ['--at', '1', 'show-key-status', scope, '--json'])) as { at?: unknown };
    assert.ok(asOf.at !== undefined, 'an as-of answer');
    assert.match(ok(dir, ['--reason', 'audit', 'verify']), /^verified/u);
  });
});
