import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliHarness, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { keytoolGenSecKey, requireKeytool } from '../helpers/keytool.js';

const TENANT = Buffer.from('tenant-1').toString('base64');

const { ok, refused } = cliHarness();
const dirs = tempDirs('keyledger-e2e-');
const tempDir = () => dirs.make();

before(() => {
  requireBuiltCli();
  requireKeytool();
});
after(() => dirs.removeAll());

describe('keyledger CLI, faults in the environment', () => {
  it('init with a bad store URL exits 2 and writes no file', async () => {
    const dir = tempDir();
    await refused(dir, ['init', '--store', 'bogus:x'], 'ERR_INVALID_STORE_URL', 2);
    assert.ok(!existsSync(join(dir, 'keyledger.config.json')));
    assert.ok(!existsSync(join(dir, '.keyledger')));
  });

  it('a relative sqlite path in the config file is taken from the file’s folder', () => {
    const dir = tempDir();
    ok(dir, ['init']);
    const elsewhere = tempDir();
    ok(elsewhere, ['enable-key-management', '*', '--config', join(dir, 'keyledger.config.json')]);
    assert.ok(!existsSync(join(elsewhere, '.keyledger')));
    assert.match(ok(dir, ['show-key-status', '*']), /ACTIVE/);
  });

  it('a config that fails validation exits 2 naming the problem', async () => {
    const dir = tempDir();
    ok(dir, ['init']);
    const config = JSON.parse(readFileSync(join(dir, 'keyledger.config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    writeFileSync(join(dir, 'keyledger.config.json'), JSON.stringify({ ...config, provider: 'vault' }));
    await refused(dir, ['show-key-status', '*'], 'ERR_INVALID_CONFIG', 2);
    writeFileSync(join(dir, 'keyledger.config.json'), '{ not json');
    await refused(dir, ['show-key-status', '*'], 'ERR_INVALID_CONFIG', 2);
    await refused(dir, ['show-key-status', '*', '--config', 'missing.json'], 'ERR_INVALID_CONFIG', 2);
  });

  it('a wrong keystore password, a missing keystore and a missing alias exit 1', async () => {
    const dir = tempDir();
    ok(dir, ['init']);
    const configPath = join(dir, 'keyledger.config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { keystore: Record<string, unknown> };
    writeFileSync(join(dir, '.keyledger', 'keystore.pass'), 'wrong-password\n');
    await refused(dir, ['enable-key-management', '*'], 'ERR_KEYSTORE_PASSWORD', 1);
    writeFileSync(
      configPath,
      JSON.stringify({ ...config, keystore: { ...config.keystore, path: 'nowhere.p12' } }),
    );
    await refused(dir, ['enable-key-management', '*'], 'ERR_KEYSTORE_NOT_FOUND', 1);
    const dir2 = tempDir();
    ok(dir2, ['init']);
    const config2 = JSON.parse(readFileSync(join(dir2, 'keyledger.config.json'), 'utf8')) as {
      keystore: Record<string, unknown>;
    };
    writeFileSync(
      join(dir2, 'keyledger.config.json'),
      JSON.stringify({ ...config2, keystore: { ...config2.keystore, systemKeyAlias: 'no-such-alias' } }),
    );
    await refused(dir2, ['rotate-stk'], 'ERR_KEYSTORE_ALIAS_NOT_FOUND', 1);
  });
});

describe('keyledger CLI with a keystore made by keytool', () => {
  it('enables, rotates and refreshes scopes from keytool keys configured per scope', async () => {
    const dir = tempDir();
    const password = 'keytool-pass';
    const store = join(dir, 'keys.p12');
    keytoolGenSecKey(store, 'stk-2026', password);
    keytoolGenSecKey(store, 'orders-1', password);
    const config = (alias: string, active = true) => ({
      store: 'sqlite:ledger.db',
      provider: 'keystore',
      keystore: {
        path: 'keys.p12',
        password: { env: 'KEYSTORE_PW' },
        properties: {
          'hbase.crypto.managed_key_store.system.key.name': 'stk-2026',
          [`hbase.crypto.managed_key_store.cust.${TENANT}.orders.alias`]: alias,
          [`hbase.crypto.managed_key_store.cust.${TENANT}.orders.active`]: String(active),
        },
      },
    });
    const env = { KEYSTORE_PW: password };
    writeFileSync(join(dir, 'keyledger.config.json'), JSON.stringify(config('orders-1')));
    assert.match(ok(dir, ['init'], { env }), /config .*\(existing\)/);
    const enabled = JSON.parse(ok(dir, ['enable-key-management', `${TENANT}:orders`, '--json'], { env })) as {
      key: { metadata: string; state: string };
    };
    assert.equal(enabled.key.state, 'ACTIVE');
    assert.deepEqual(JSON.parse(enabled.key.metadata), {
      KeyAlias: 'orders-1',
      KeyCustodian: TENANT,
      KeyNamespace: 'orders',
    });

    // A scope without an alias: the provider answers FAILED and the marker says so.
    const failed = JSON.parse(
      ok(dir, ['enable-key-management', `${TENANT}:invoices`, '--json'], { env }),
    ) as {
      marker: string;
    };
    assert.equal(failed.marker, 'FAILED');

    // The operator adds a key with keytool and points the scope at it: rotation picks it up.
    keytoolGenSecKey(store, 'orders-2', password);
    writeFileSync(join(dir, 'keyledger.config.json'), JSON.stringify(config('orders-2')));
    ok(dir, ['rotate-managed-key', `${TENANT}:orders`], { env });
    const keys = JSON.parse(ok(dir, ['show-key-status', `${TENANT}:orders`, '--json'], { env })) as {
      metadata: string;
      state: string;
    }[];
    assert.deepEqual(
      keys.map((k) => [JSON.parse(k.metadata).KeyAlias, k.state]),
      [
        ['orders-1', 'INACTIVE'],
        ['orders-2', 'ACTIVE'],
      ],
    );
    // Marked inactive in the config: refresh follows the provider.
    writeFileSync(join(dir, 'keyledger.config.json'), JSON.stringify(config('orders-2', false)));
    ok(dir, ['refresh-managed-keys', `${TENANT}:orders`], { env });
    const refreshed = JSON.parse(ok(dir, ['show-key-status', `${TENANT}:orders`, '--json'], { env })) as {
      state: string;
    }[];
    assert.deepEqual(
      refreshed.map((k) => k.state),
      ['INACTIVE', 'INACTIVE'],
    );
    // Dynamic lookup (on by default with the keystore provider): a configured scope the ledger has
    // never seen is asked of the provider during resolution, and the answer recorded as events.
    writeFileSync(
      join(dir, 'keyledger.config.json'),
      JSON.stringify({
        ...config('orders-2'),
        keystore: {
          ...config('orders-2').keystore,
          properties: {
            ...config('orders-2').keystore.properties,
            [`hbase.crypto.managed_key_store.cust.${TENANT}.returns.alias`]: 'orders-1',
          },
        },
      }),
    );
    const looked = JSON.parse(ok(dir, ['resolve', TENANT, '--namespace', 'returns', '--json'], { env })) as {
      namespace: string;
    };
    assert.equal(looked.namespace, 'returns');
    const history = JSON.parse(ok(dir, ['history', `${TENANT}:returns`, '--json'], { env })) as {
      type: string;
      actor: string;
    }[];
    assert.deepEqual(
      history.map((h) => [h.type, h.actor]),
      [['KeyManagementEnabled', 'keyledger-resolver']],
    );
    await refused(dir, ['rotate-stk'], 'ERR_KEYSTORE_PASSWORD', 1, { env: { KEYSTORE_PW: '' } });
  });
});
