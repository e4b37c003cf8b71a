import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/runCli.js';
import { readPkcs12SecretKeys, writePkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { cliHarness, requireBuiltCli, storeHead, tempDirs } from '../helpers/cliHarness.js';

/**
 * `keyledger rewrap` and `keyledger retire-stk` driven as a user would: the built CLI (`npm test`
 * builds first), one process per command, in a dev setup made by `init`. KEYLEDGER_E2E_BIN points
 * the test at another build of the CLI (test/helpers/cliHarness.ts).
 */
const TENANT = Buffer.from('tenant-1').toString('base64');
const NEW_ALIAS = 'stk-2026';

const { ok, refused } = cliHarness();

/** Adds a new 256-bit key under `alias` to the dev keystore (as an operator would with keytool). */
function addKeystoreKey(dir: string, alias: string): void {
  const path = join(dir, '.keyledger', 'keystore.p12');
  const password = readFileSync(join(dir, '.keyledger', 'keystore.pass'), 'utf8').trim();
  const entries = readPkcs12SecretKeys(readFileSync(path), password);
  const added = SecretBytes.copyOf(Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff)));
  try {
    writeFileSync(path, writePkcs12SecretKeys([...entries, { alias, key: added }], password));
  } finally {
    for (const e of entries) e.key.zero();
    added.zero();
  }
}

/**
 * Points the config's system key at `alias` (what `rotate-stk` then records), keeping the one it
 * replaces as a previous system key: only configured aliases are served as system keys.
 */
function useSystemKeyAlias(dir: string, alias: string): void {
  const path = join(dir, 'keyledger.config.json');
  const config = JSON.parse(readFileSync(path, 'utf8')) as {
    keystore: { systemKeyAlias: string; previousSystemKeyAliases?: string[] };
  };
  const previous = [...(config.keystore.previousSystemKeyAliases ?? []), config.keystore.systemKeyAlias];
  writeFileSync(
    path,
    JSON.stringify({
      ...config,
      keystore: { ...config.keystore, systemKeyAlias: alias, previousSystemKeyAliases: previous },
    }),
    { mode: 0o600 },
  );
}

const dirs = tempDirs('keyledger-rewrap-e2e-');
const tempDir = () => dirs.make();

after(() => dirs.removeAll());

describe('keyledger rewrap and retire-stk (built CLI)', () => {
  let dir: string;
  const scopes = ['*', `${TENANT}:orders`, `${TENANT}:billing`, `${TENANT}:returns`];
  const keyStks = () =>
    scopes.flatMap((scope) =>
      (JSON.parse(ok(dir, ['show-key-status', scope, '--json'])) as { stkIdentity: string }[]).map(
        (k) => k.stkIdentity,
      ),
    );

  before(() => {
    requireBuiltCli();
    dir = tempDir();
    ok(dir, ['init']);
    for (const scope of scopes) ok(dir, ['enable-key-management', scope]);
  });

  it('with every key under the current system key, rewrap has nothing to do and writes nothing', async () => {
    const before = await storeHead(dir);
    assert.match(ok(dir, ['rewrap']), /nothing to do/);
    const json = JSON.parse(ok(dir, ['rewrap', '--json'])) as { status: string; campaign: unknown };
    assert.deepEqual([json.status, json.campaign], ['up-to-date', null]);
    assert.equal(await storeHead(dir), before);
  });

  it('rotates the system key, refuses to retire the old one while keys use it, rewraps, then retires it', async () => {
    const [oldStk] = keyStks();
    assert.ok(oldStk);
    addKeystoreKey(dir, NEW_ALIAS);
    useSystemKeyAlias(dir, NEW_ALIAS);
    const rotated = JSON.parse(ok(dir, ['rotate-stk', '--json'])) as { changed: boolean; identity: string };
    assert.equal(rotated.changed, true);
    const newStk = rotated.identity;

    const { stderr: inUse } = await refused(dir, ['retire-stk', oldStk], 'ERR_SYSTEM_KEY_IN_USE', 2);
    assert.match(inUse, /4 keys/);
    await refused(dir, ['retire-stk', newStk], 'ERR_SYSTEM_KEY_CURRENT', 2);

    // One batch of one key, then stop: the campaign is left to resume.
    const paused = JSON.parse(ok(dir, ['rewrap', '--batch', '1', '--max-batches', '1', '--json'])) as {
      status: string;
      campaign: { campaignId: string; done: number; keys: number };
      remaining: number;
    };
    assert.deepEqual(
      [paused.status, paused.campaign.done, paused.campaign.keys, paused.remaining],
      ['paused', 1, 4, 3],
    );
    const id = paused.campaign.campaignId;
    const { stderr: again } = await refused(dir, ['rewrap'], 'ERR_REWRAP_IN_PROGRESS', 2);
    assert.match(again, new RegExp(id));

    // Not a terminal: one plain line per checkpoint, then the summary.
    const resumed = ok(dir, ['rewrap', '--resume', id, '--batch', '2', '--reason', 'stk rollout']);
    assert.match(resumed, new RegExp(`rewrap ${id}: 3/4 keys \\(75%\\)`));
    assert.match(resumed, new RegExp(`rewrap ${id}: 4/4 keys \\(100%\\)`));
    assert.match(
      resumed,
      new RegExp(
        `campaign ${id} finished: 4 keys re-wrapped, 0 skipped, under system key #2 \\(${newStk}\\)`,
      ),
    );
    assert.ok(!resumed.includes('\r'), 'no terminal control characters in a pipe');
    assert.deepEqual(keyStks(), [newStk, newStk, newStk, newStk]);
    await refused(dir, ['rewrap', '--resume', id], 'ERR_REWRAP_FINISHED', 2);

    const status = JSON.parse(ok(dir, ['rewrap', '--status', '--json'])) as {
      pending: number;
      systemKeys: { identity: string; keys: number; current: boolean }[];
      campaigns: { campaignId: string; finished: boolean }[];
    };
    assert.equal(status.pending, 0);
    assert.deepEqual(
      status.systemKeys.map((k) => [k.identity, k.keys, k.current]),
      [
        [oldStk, 0, false],
        [newStk, 4, true],
      ],
    );
    assert.deepEqual(
      status.campaigns.map((c) => [c.campaignId, c.finished]),
      [[id, true]],
    );
    assert.match(ok(dir, ['rewrap', '--status']), /SYSTEM KEY/);

    assert.match(ok(dir, ['retire-stk', oldStk]), new RegExp(`system key #1 \\(${oldStk}\\) retired`));
    await refused(dir, ['retire-stk', oldStk], 'ERR_SYSTEM_KEY_ALREADY_RETIRED', 2);
    const retired = JSON.parse(ok(dir, ['rewrap', '--status', '--json'])) as {
      systemKeys: { retiredAt: string | null }[];
    };
    assert.notEqual(retired.systemKeys[0]?.retiredAt, null);

    // Every key still resolves in a fresh process, unwrapped under the new system key only.
    const resolved = JSON.parse(ok(dir, ['resolve', TENANT, '--namespace', 'orders', '--json'])) as {
      namespace: string;
    };
    assert.equal(resolved.namespace, 'orders');
    assert.match(ok(dir, ['rewrap']), /nothing to do/);
  });

  it('bad input exits 2 and writes nothing', async () => {
    await refused(dir, ['rewrap', '--batch', '0'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['rewrap', '--batch', 'ten'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['rewrap', '--resume', 'not-a-campaign'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(
      dir,
      ['rewrap', '--resume', '00000000-0000-4000-8000-000000000000'],
      'ERR_REWRAP_NOT_FOUND',
      2,
    );
    await refused(dir, ['rewrap', 'extra'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['rewrap', '--status', '--batch', '3'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['retire-stk'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['retire-stk', 'xyz'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['retire-stk', '0000000000000000'], 'ERR_SYSTEM_KEY_NOT_FOUND', 1);
    assert.match(ok(dir, ['rewrap', '--help']), /usage: keyledger rewrap/);
  });
});

describe('keyledger rewrap on a terminal (in process)', () => {
  it('draws a progress bar in place', async () => {
    const dir = tempDir();
    ok(dir, ['init']);
    for (const ns of ['a', 'b', 'c']) ok(dir, ['enable-key-management', `${TENANT}:${ns}`]);
    addKeystoreKey(dir, NEW_ALIAS);
    useSystemKeyAlias(dir, NEW_ALIAS);
    ok(dir, ['rotate-stk']);
    let stdout = '';
    let stderr = '';
    const code = await runCli(['rewrap', '--batch', '1'], {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      cwd: dir,
      env: { KEYLEDGER_ACTOR: 'e2e' },
      isTty: true,
    });
    assert.equal(code, 0, stderr);
    const frames = stdout.split('\r').filter((f) => f.includes('['));
    assert.equal(frames.length, 3);
    assert.match(frames[0] ?? '', /rewrap \[#{10}-{20}\] {2}33% 1\/3 keys/);
    assert.match(frames[2] ?? '', /rewrap \[#{30}\] 100% 3\/3 keys\n/);
    assert.match(stdout, /finished: 3 keys re-wrapped/);
  });
});
