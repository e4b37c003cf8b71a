import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliHarness, requireBuiltCli, storeHead, tempDirs } from '../helpers/cliHarness.js';

/**
 * Crypto-shredding driven as an operator would: the built CLI (`npm test` builds first), one process
 * per command, in a dev setup made by `init`. Time is not faked: a destruction is made due at once
 * with `--grace 0s` (or the config's `destroyGracePeriod`), which is also how an operator who has
 * already waited would do it. KEYLEDGER_E2E_BIN points the test at another build of the CLI
 * (test/helpers/cliHarness.ts).
 */
const TENANT = Buffer.from('tenant-1').toString('base64');
const SCOPE = `${TENANT}:orders`;
const DAY = 86_400_000;

const { keyledger, succeeded, ok, refused } = cliHarness({ errorAtStart: true });

function setConfig(dir: string, fields: Record<string, unknown>): void {
  const path = join(dir, 'keyledger.config.json');
  writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ...fields }));
}

interface KeyJson {
  readonly state: string;
  readonly metadataHash: string;
  readonly keyId: string;
  readonly destructionDueAt: string | null;
}

const dirs = tempDirs('keyledger-destroy-e2e-');
after(() => dirs.removeAll());

describe('keyledger destroy-managed-key, cancel-destroy, destroy-due-keys (built CLI)', () => {
  let dir: string;
  let k1: KeyJson;
  let k2: KeyJson;
  let ciphertext: Buffer;
  const keys = () => JSON.parse(ok(dir, ['show-key-status', SCOPE, '--json'])) as KeyJson[];

  before(() => {
    requireBuiltCli();
    dir = dirs.make();
    ok(dir, ['init']);
    ok(dir, ['enable-key-management', SCOPE]);
    ciphertext = succeeded(dir, ['encrypt', TENANT, '--namespace', 'orders'], {
      input: Buffer.from('old data'),
    }).bytes;
    ok(dir, ['rotate-managed-key', SCOPE]);
    [k1, k2] = keys() as [KeyJson, KeyJson];
    assert.deepEqual([k1.state, k2.state], ['INACTIVE', 'ACTIVE']);
  });

  it('refuses the ACTIVE key, unknown scopes and keys, and malformed input (exit 2, nothing written)', async () => {
    await refused(dir, ['destroy-managed-key', SCOPE, k2.metadataHash], 'ERR_KEY_ACTIVE');
    await refused(dir, ['destroy-managed-key', `${TENANT}:nowhere`, k1.metadataHash], 'ERR_SCOPE_NOT_FOUND');
    await refused(dir, ['cancel-destroy', `${TENANT}:nowhere`, k1.metadataHash], 'ERR_SCOPE_NOT_FOUND');
    await refused(dir, ['destroy-managed-key', SCOPE, 'A'.repeat(43)], 'ERR_KEY_NOT_FOUND');
    await refused(dir, ['destroy-managed-key', SCOPE, 'short'], 'ERR_INVALID_METADATA');
    await refused(dir, ['destroy-managed-key', SCOPE], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['destroy-due-keys', SCOPE], 'ERR_INVALID_ARGUMENT');
    for (const grace of ['7 days', '7', '-1d', '1y', '3651d']) {
      const { stderr } = await refused(
        dir,
        ['destroy-managed-key', SCOPE, k1.metadataHash, '--grace', grace],
        'ERR_INVALID_ARGUMENT',
      );
      assert.match(stderr, /--grace/);
    }
    await refused(dir, ['cancel-destroy', SCOPE, k1.metadataHash, '--grace', '1d'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['rotate-managed-key', SCOPE, '--grace', '1d'], 'ERR_INVALID_ARGUMENT');
    await refused(dir, ['cancel-destroy', SCOPE, k1.metadataHash], 'ERR_KEY_DESTRUCTION_NOT_SCHEDULED');
  });

  it('schedules with the default 7 days, shows it, refuses a second schedule, runs nothing early, cancels', async () => {
    const before = Date.now();
    const scheduled = JSON.parse(ok(dir, ['destroy-managed-key', SCOPE, k1.metadataHash, '--json'])) as {
      position: string;
      dueAt: string;
      key: KeyJson;
    };
    const dueAt = Date.parse(scheduled.dueAt);
    assert.ok(dueAt >= before + 7 * DAY && dueAt <= Date.now() + 7 * DAY, scheduled.dueAt);
    assert.equal(scheduled.key.state, 'INACTIVE');
    assert.match(
      ok(dir, ['show-key-status', SCOPE]),
      new RegExp(`${k1.metadataHash}: destruction scheduled, due at ${scheduled.dueAt}`),
    );
    assert.equal(keys()[0]?.destructionDueAt, scheduled.dueAt);

    await refused(
      dir,
      ['destroy-managed-key', SCOPE, k1.metadataHash, '--grace', '0s'],
      'ERR_KEY_DESTRUCTION_SCHEDULED',
    );
    const headBefore = await storeHead(dir);
    assert.equal(ok(dir, ['destroy-due-keys']), 'no destruction is due\n');
    assert.equal(await storeHead(dir), headBefore);

    assert.match(ok(dir, ['cancel-destroy', SCOPE, k1.metadataHash]), /cancelled; it stays INACTIVE/);
    assert.equal(keys()[0]?.destructionDueAt, null);
    // Still readable: nothing was destroyed.
    assert.equal(ok(dir, ['decrypt'], { input: ciphertext }), 'old data');
  });

  it('takes the grace period from the config, and refuses a bad one there', async () => {
    setConfig(dir, { destroyGracePeriod: '30d' });
    const before = Date.now();
    const { dueAt } = JSON.parse(ok(dir, ['destroy-managed-key', SCOPE, k1.metadataHash, '--json'])) as {
      dueAt: string;
    };
    assert.ok(Date.parse(dueAt) >= before + 30 * DAY && Date.parse(dueAt) <= Date.now() + 30 * DAY, dueAt);
    ok(dir, ['cancel-destroy', SCOPE, k1.metadataHash]);
    setConfig(dir, { destroyGracePeriod: 'forever' });
    const { stderr } = await refused(dir, ['destroy-due-keys'], 'ERR_INVALID_CONFIG');
    assert.match(stderr, /destroyGracePeriod/);
    setConfig(dir, { destroyGracePeriod: '7d' });
  });

  it('--grace 0s then destroy-due-keys: receipt, decrypt fails, history and receipts stay; no undo', async () => {
    ok(dir, ['destroy-managed-key', SCOPE, k1.metadataHash, '--grace', '0s', '--reason', 'customer left']);
    const run = JSON.parse(ok(dir, ['destroy-due-keys', '--json', '--actor', 'shredder'])) as {
      destroyed: Record<string, unknown>[];
      leftoversDeleted: string[];
    };
    assert.equal(run.destroyed.length, 1);
    const [receipt] = run.destroyed;
    assert.equal(receipt?.keyId, k1.keyId);
    assert.equal(receipt?.metadataHash, k1.metadataHash);
    assert.equal(receipt?.previousState, 'INACTIVE');
    assert.equal(receipt?.materialEvents, 1);
    assert.match(String(receipt?.materialHash), /^[0-9a-f]{64}$/);
    assert.equal(receipt?.actor, 'shredder');
    // --grace 0s: due the moment it was scheduled.
    assert.equal(receipt?.dueAt, receipt?.scheduledAt);
    assert.deepEqual(run.leftoversDeleted, []);

    const decrypt = keyledger(dir, ['decrypt'], { input: ciphertext });
    assert.equal(decrypt.code, 1);
    assert.match(decrypt.stderr, /^error ERR_DECRYPTION_FAILED:/);
    assert.equal(decrypt.stdout, '');

    assert.deepEqual(
      keys().map((k) => [k.state, k.destructionDueAt]),
      [
        ['DESTROYED', null],
        ['ACTIVE', null],
      ],
    );
    assert.match(ok(dir, ['show-key-status', SCOPE]), new RegExp(`${k1.metadataHash}: DESTROYED at `));
    const history = ok(dir, ['history', SCOPE]);
    assert.match(history, /ManagedKeyDestructionScheduled/);
    assert.match(history, /ManagedKeyDestroyed .*INACTIVE → DESTROYED/);
    assert.deepEqual(JSON.parse(ok(dir, ['destruction-receipts', SCOPE, '--json'])), [receipt]);
    assert.match(
      ok(dir, ['destruction-receipts', SCOPE]),
      new RegExp(`${k1.metadataHash}\\s+INACTIVE\\s+1 event\\s+${String(receipt?.materialHash)}`),
    );

    await refused(dir, ['cancel-destroy', SCOPE, k1.metadataHash], 'ERR_KEY_DESTROYED');
    await refused(dir, ['destroy-managed-key', SCOPE, k1.metadataHash], 'ERR_KEY_DESTROYED');
    const headAfter = await storeHead(dir);
    assert.equal(ok(dir, ['destroy-due-keys']), 'no destruction is due\n');
    assert.equal(await storeHead(dir), headAfter);
    // New data still goes under the ACTIVE key.
    const fresh = succeeded(dir, ['encrypt', TENANT, '--namespace', 'orders'], {
      input: Buffer.from('new data'),
    }).bytes;
    assert.equal(ok(dir, ['decrypt'], { input: fresh }), 'new data');
  });

  it('lists the commands in --help', () => {
    const help = ok(dir, ['--help']);
    for (const command of [
      'destroy-managed-key',
      'cancel-destroy',
      'destroy-due-keys',
      'destruction-receipts',
      '--grace',
    ]) {
      assert.ok(help.includes(command), command);
    }
  });
});
