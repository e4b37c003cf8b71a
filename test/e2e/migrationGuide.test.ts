import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { runDocCommands, sessionCommands } from '../docs/docRunner.js';
import { cliHarness, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { javaSecretKeys, requireKeytool, withTempDir } from '../helpers/keytool.js';

/**
 * docs/migration.md, followed step by step: an old deployment's JCEKS keystore made by keytool
 * (`-storetype JCEKS`: the master key and a per-table key), legacy files encrypted here with
 * node:crypto in the legacy layout under those keys, then every `$ …` command of the guide, in
 * order, through the built CLI and the real keytool.
 */

const GUIDE = new URL('../../docs/migration.md', import.meta.url).pathname;
const OLD_PASSWORD = 'hbase-store-secret';
const { keyledger } = cliHarness({ actor: 'alice' });
const dirs = tempDirs('keyledger-e2e-migration-');

before(() => {
  requireBuiltCli();
  requireKeytool();
});
after(() => dirs.removeAll());

function keytool(cwd: string, args: readonly string[]): void {
  const result = spawnSync('keytool', ['-J-Duser.language=en', ...args], { cwd, encoding: 'utf8' });
  assert.equal(result.status, 0, `keytool ${args.join(' ')}: ${result.stdout}${result.stderr}`);
}

/** nonce(12) ‖ ciphertext ‖ tag(16), as hand-rolled code writes AES-256-GCM. */
function legacyEncrypt(key: Buffer, plaintext: string, aad?: string): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad !== undefined) cipher.setAAD(Buffer.from(aad));
  return Buffer.concat([nonce, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
}

/** The old deployment: hbase.jceks and its password, and files its application wrote. */
async function oldDeployment(dir: string): Promise<void> {
  writeFileSync(join(dir, 'hbase-keystore.pass'), OLD_PASSWORD, { mode: 0o600 });
  for (const alias of ['hbase-master', 'orders-key']) {
    keytool(dir, [
      '-genseckey',
      '-keyalg',
      'AES',
      '-keysize',
      '256',
      '-storetype',
      'JCEKS',
      '-keystore',
      'hbase.jceks',
      '-storepass:file',
      'hbase-keystore.pass',
      '-keypass:file',
      'hbase-keystore.pass',
      '-alias',
      alias,
    ]);
  }
  // The old application's view of its keys: Java's own KeyStore decrypts them (from a scratch copy).
  const keys = await withTempDir(async (scratch) => {
    const copy = join(scratch, 'old.p12');
    keytool(dir, [
      '-importkeystore',
      '-noprompt',
      '-srckeystore',
      'hbase.jceks',
      '-srcstoretype',
      'JCEKS',
      '-srcstorepass:file',
      'hbase-keystore.pass',
      '-destkeystore',
      copy,
      '-deststoretype',
      'PKCS12',
      '-deststorepass:file',
      'hbase-keystore.pass',
    ]);
    return javaSecretKeys(copy, OLD_PASSWORD);
  });
  const keyOf = (alias: string) => Buffer.from(keys.find((k) => k.alias === alias)?.hex ?? '', 'hex');
  assert.equal(keyOf('hbase-master').length, 32);
  mkdirSync(join(dir, 'old'));
  writeFileSync(
    join(dir, 'old', 'orders.enc'),
    legacyEncrypt(keyOf('orders-key'), 'order 1: 3 widgets\n', 'orders'),
  );
  writeFileSync(join(dir, 'old', 'archive.enc'), legacyEncrypt(keyOf('hbase-master'), 'archive of 2019\n'));
}

/** The guide's configuration: its one ```json block. */
function guideConfig(): string {
  const match = /```json\n([\s\S]*?)\n```/.exec(readFileSync(GUIDE, 'utf8'));
  assert.ok(match?.[1] !== undefined, 'docs/migration.md shows keyledger.config.json');
  return match[1];
}

async function storeHead(dir: string): Promise<bigint> {
  const store = SqliteEventStore.open(join(dir, 'ledger.db'));
  try {
    return await store.headPosition();
  } finally {
    await store.close();
  }
}

describe('docs/migration.md', () => {
  it('every step runs in order against keytool-made keystores; old data re-encrypted, legacy keys retired', async () => {
    const dir = dirs.make();
    await oldDeployment(dir);
    writeFileSync(join(dir, 'keyledger.config.json'), guideConfig());
    const commands = sessionCommands(GUIDE);
    assert.ok(
      commands.some(
        (c) => c.command.startsWith('keytool -importkeystore') && /JCEKS.*PKCS12/.test(c.command),
      ),
    );
    assert.ok(commands.filter((c) => c.command.startsWith('keyledger reencrypt')).length >= 3);
    assert.ok(runDocCommands(dir, commands) >= 15);

    // The re-encrypted files decrypt with keyledger decrypt to what the old application wrote.
    const orders = keyledger(dir, ['decrypt', '--aad', 'orders'], {
      input: readFileSync(join(dir, 'orders.kle')),
    });
    assert.equal(orders.code, 0, orders.stderr);
    assert.equal(orders.stdout, 'order 1: 3 widgets\n');
    const archive = keyledger(dir, ['decrypt'], { input: readFileSync(join(dir, 'archive.kle')) });
    assert.equal(archive.stdout, 'archive of 2019\n');
    // Under the new ACTIVE keys, not the legacy ones (which are DISABLED now and decrypt nothing).
    const keys = JSON.parse(keyledger(dir, ['show-key-status', 'Kg==:orders', '--json']).stdout) as {
      state: string;
    }[];
    assert.deepEqual(keys.map((k) => k.state).sort(), ['ACTIVE', 'DISABLED']);
    // What failed wrote no file.
    assert.ok(!existsSync(join(dir, 'wrong.kle')) && !existsSync(join(dir, 'late.kle')));

    // The history shows the imports with their reasons, and the retirement.
    const history = JSON.parse(keyledger(dir, ['history', 'Kg==:orders', '--json']).stdout) as {
      type: string;
      actor: string;
      reason: string | null;
    }[];
    assert.deepEqual(
      history.map((e) => [e.type, e.actor, e.reason]),
      [
        ['ManagedKeyImported', 'alice', 'migration: table orders'],
        ['KeyManagementEnabled', 'alice', null],
        ['ManagedKeyDisabled', 'alice', 'orders re-encrypted'],
      ],
    );
    const global = JSON.parse(keyledger(dir, ['history', '*', '--json']).stdout) as { type: string }[];
    assert.equal(global[0]?.type, 'ManagedKeyImported');

    // Bad input after the guide: a wrong --legacy value, an unknown key, an oversize file — each
    // refused with its code, nothing written to the store or the output.
    const head = await storeHead(dir);
    const input = readFileSync(join(dir, 'old', 'orders.enc'));
    for (const [args, code] of [
      [['--legacy', 'aes-128-cbc', '--key', 'x'], 'ERR_INVALID_ARGUMENT'],
      [['--legacy', 'aes-256-gcm', '--key', 'no-such-key'], 'ERR_LEGACY_KEY_UNUSABLE'],
      [['--legacy', 'aes-256-gcm', '--key', 'x', '--max-bytes', '16'], 'ERR_PAYLOAD_TOO_LARGE'],
    ] as const) {
      const run = keyledger(dir, ['reencrypt', ...args, '--out', 'refused.kle'], { input });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`error ${code}:`));
      assert.equal(run.bytes.length, 0);
      assert.ok(!existsSync(join(dir, 'refused.kle')));
    }
    assert.equal(await storeHead(dir), head);
  });
});
