import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliHarness, requireBuiltCli } from '../helpers/cliHarness.js';

/**
 * A ledger written by an earlier main (test/fixtures/ledger-main-728c5a1/README.md says how) must
 * keep opening, decrypting and verifying after format changes, and must take new writes.
 */
const FIXTURE = new URL('../fixtures/ledger-main-728c5a1/', import.meta.url).pathname;
const TENANT = Buffer.from('tenant-1').toString('base64');
const DESTROYED = '4vN7f2ZyYnMqrDk9ujDryqiXNkPtitP7jcLAZ6ExQ1Q';
const INACTIVE = 'HO3wxkA08JozV6VKhKbTWlBWdeRC4X4kBpe7AChWc2Y';
const ACTIVE = 'bNmfIBGZLe0AP0-DJcoC_Pccn_3zKLm-WAS1L1z0Ohk';
const PLAINTEXT = 'fixture plaintext under the ledger of main 728c5a1\n';

interface KeyRow {
  readonly metadataHash: string;
  readonly state: string;
}

describe('a ledger written by main 728c5a1', () => {
  const cli = cliHarness();
  let dir: string;

  before(() => {
    requireBuiltCli();
    dir = mkdtempSync(join(tmpdir(), 'keyledger-legacy-'));
    const data = join(dir, '.keyledger');
    cpSync(join(FIXTURE, 'keyledger-dir'), data, { recursive: true });
    cpSync(join(FIXTURE, 'config.json'), join(dir, 'keyledger.config.json'));
    upgradeConfig(join(dir, 'keyledger.config.json'));
    cpSync(join(FIXTURE, 'data.kle'), join(dir, 'data.kle'));
    // A checkout keeps no file modes: give the copy the modes `init` gives a dev setup.
    chmodSync(data, 0o700);
    for (const name of readdirSync(data)) chmodSync(join(data, name), 0o600);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function keys(scope: string): KeyRow[] {
    return JSON.parse(cli.ok(dir, ['show-key-status', scope, '--json'])) as KeyRow[];
  }

  it('opens with every key in the state it was left in', () => {
    const byHash = new Map(keys(`${TENANT}:orders`).map((k) => [k.metadataHash, k.state]));
    assert.deepEqual(Object.fromEntries(byHash), {
      [DESTROYED]: 'DESTROYED',
      [INACTIVE]: 'INACTIVE',
      [ACTIVE]: 'ACTIVE',
    });
    assert.equal(keys(`${TENANT}:later`)[0]?.state, 'ACTIVE');
  });

  it('without the upgrade step, the earlier system key alias is not served (decrypt fails uniformly)', async () => {
    const config = join(dir, 'not-upgraded.config.json');
    cpSync(join(FIXTURE, 'config.json'), config);
    const input = readFileSync(join(dir, 'data.kle'));
    await cli.refused(dir, ['--config', config, 'decrypt'], 'ERR_DECRYPTION_FAILED', 1, { input });
  });

  it('decrypts data written under a key wrapped by the first system key', () => {
    const run = cli.succeeded(dir, ['decrypt'], { input: readFileSync(join(dir, 'data.kle')) });
    assert.equal(run.stdout, PLAINTEXT);
  });

  it('verifies, takes new writes, and verifies again', () => {
    cli.ok(dir, ['verify']);
    cli.ok(dir, ['rotate-managed-key', `${TENANT}:payments`, '--reason', 'after upgrade']);
    cli.ok(dir, ['checkpoint']);
    const report = JSON.parse(cli.ok(dir, ['verify', '--json'])) as { ok: boolean; uncoveredEvents: number };
    assert.equal(report.ok, true);
    assert.equal(report.uncoveredEvents, 0);
    const run = cli.succeeded(dir, ['decrypt'], { input: readFileSync(join(dir, 'data.kle')) });
    assert.equal(run.stdout, PLAINTEXT);
  });
});

/**
 * The one upgrade step docs/formats.md asks of a ledger whose system-key alias changed before
 * identity version 2: name the earlier alias, since only configured aliases are served as STKs.
 */
function upgradeConfig(file: string): void {
  const config = JSON.parse(readFileSync(file, 'utf8')) as { keystore: Record<string, unknown> };
  config.keystore.previousSystemKeyAliases = ['keyledger-system-key'];
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
}
