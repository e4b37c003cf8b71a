import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliHarness, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { keytoolGenSecKey, requireKeytool } from '../helpers/keytool.js';

const TENANT = Buffer.from('tenant-1').toString('base64');
const { ok, keyledger, refused } = cliHarness();
const dirs = tempDirs('keyledger-e2e-import-');

before(() => {
  requireBuiltCli();
  requireKeytool();
});
after(() => dirs.removeAll());

describe('keyledger CLI: import-managed-key and rotation policies with a keytool keystore', () => {
  it('imports an old deployment’s keys, refuses one key in two scopes, and runs due rotations', async () => {
    const dir = dirs.make();
    const password = 'keytool-pass';
    const store = join(dir, 'keys.p12');
    for (const alias of ['stk-2026', 'legacy-master', 'table-orders'])
      keytoolGenSecKey(store, alias, password);
    writeFileSync(
      join(dir, 'keyledger.config.json'),
      JSON.stringify({
        store: 'sqlite:ledger.db',
        provider: 'keystore',
        keystore: {
          path: 'keys.p12',
          password: { env: 'KEYSTORE_PW' },
          properties: { 'hbase.crypto.managed_key_store.system.key.name': 'stk-2026' },
        },
      }),
    );
    const env = { KEYSTORE_PW: password };
    ok(dir, ['init'], { env });
    const orders = `${TENANT}:orders`;
    const imported = JSON.parse(
      ok(dir, ['import-managed-key', orders, '--alias', 'table-orders', '--reason', 'adopt', '--json'], {
        env,
      }),
    ) as { key: { state: string; metadataHash: string } };
    assert.equal(imported.key.state, 'ACTIVE');
    ok(dir, ['import-managed-key', orders, '--alias', 'legacy-master', '--inactive'], { env });
    const keys = JSON.parse(ok(dir, ['show-key-status', orders, '--json'], { env })) as {
      state: string;
      ageMs: number;
    }[];
    assert.deepEqual(
      keys.map((k) => k.state),
      ['ACTIVE', 'INACTIVE'],
    );
    assert.ok(keys.every((k) => typeof k.ageMs === 'number'));
    // The ACTIVE imported key encrypts, and what it wrote decrypts.
    const ct = keyledger(dir, ['encrypt', TENANT, '--namespace', 'orders'], {
      env,
      input: Buffer.from('old data'),
    });
    assert.equal(ct.code, 0, ct.stderr);
    const pt = keyledger(dir, ['decrypt'], { env, input: ct.bytes });
    assert.equal(pt.stdout, 'old data');
    // One key never serves two scopes: refused, nothing written.
    await refused(
      dir,
      ['import-managed-key', `${TENANT}:billing`, '--alias', 'table-orders'],
      'ERR_KEY_IN_OTHER_SCOPE',
      2,
      {
        env,
      },
    );

    // A policy: set, shown by show-key-status, listed; a bad duration is refused, nothing written.
    await refused(dir, ['set-rotation-policy', orders, '--period', '90'], 'ERR_INVALID_ARGUMENT', 2, { env });
    ok(dir, ['set-rotation-policy', orders, '--period', '1s', '--reason', 'test'], { env });
    assert.match(
      ok(dir, ['show-key-status', orders], { env }),
      /^rotation: rotate every 1s \(the scope’s own policy\)/m,
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const dry = JSON.parse(ok(dir, ['rotate-due-keys', '--dry-run', '--json'], { env })) as {
      results: { kind: string; outcome: string }[];
    };
    assert.deepEqual(
      dry.results.map((r) => [r.kind, r.outcome]),
      [['rotate-key', 'planned']],
    );
    // The keystore answers with the same key until its configuration names a new alias: unchanged,
    // nothing recorded, exit 0.
    const run = JSON.parse(ok(dir, ['rotate-due-keys', '--json'], { env })) as {
      results: { outcome: string }[];
    };
    assert.deepEqual(
      run.results.map((r) => r.outcome),
      ['unchanged'],
    );
    const history = JSON.parse(ok(dir, ['rotation-policy-history', orders, '--json'], { env })) as {
      reason: string;
    }[];
    assert.deepEqual(
      history.map((e) => e.reason),
      ['test'],
    );
    ok(dir, ['clear-rotation-policy', orders], { env });
    await refused(dir, ['clear-rotation-policy', orders], 'ERR_ROTATION_POLICY_NOT_FOUND', 2, { env });
  });
});
