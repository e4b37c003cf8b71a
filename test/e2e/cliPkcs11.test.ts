import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliHarness, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { createSoftHsmToken } from '../helpers/softHsm.js';

/**
 * A whole ledger on a SoftHSM2 token through the built CLI: the system keys are made and used in the
 * token; the config names the module, token and PIN variable, never the PIN. Every command is its own
 * process, so each one loads the module, logs in once and finds its keys by label.
 */

// Before the harness: its environment (SOFTHSM2_CONF, the PIN variable) is taken from this process.
const hsm = createSoftHsmToken('kl-e2e', '3333-e2e-pin');
const PIN_ENV = 'KEYLEDGER_E2E_HSM_PIN';
process.env[PIN_ENV] = hsm.pin;
const { ok, refused, succeeded } = cliHarness();
const dirs = tempDirs('keyledger-e2e-pkcs11-');
after(() => {
  dirs.removeAll();
  delete process.env[PIN_ENV];
  hsm.remove();
});

const TENANT = Buffer.from('hsm-tenant').toString('base64');
const SCOPE = `${TENANT}:orders`;
const initArgs = (label: string, pinEnv = PIN_ENV) => [
  'init',
  '--provider',
  'pkcs11',
  '--module',
  hsm.module,
  '--token-label',
  label,
  '--pin-env',
  pinEnv,
];

describe('keyledger on a PKCS#11 token (SoftHSM2)', () => {
  before(() => requireBuiltCli());

  it('refuses bad init input and a wrong PIN without writing a config', async () => {
    const dir = dirs.make();
    await refused(
      dir,
      ['init', '--provider', 'pkcs11', '--token-label', hsm.label],
      'ERR_INVALID_ARGUMENT',
      2,
    );
    await refused(dir, ['init', '--module', hsm.module], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, initArgs('no-such-token'), 'ERR_PKCS11_TOKEN_NOT_FOUND', 1);
    await refused(dir, initArgs(hsm.label), 'ERR_PKCS11_PIN', 1, { env: { [PIN_ENV]: 'wrong-pin' } });
    assert.equal(existsSync(join(dir, 'keyledger.config.json')), false);
  });

  it('init with a written pkcs11 config creates the STK in the token when it has none', () => {
    const dir = dirs.make();
    const pinFile = join(dir, 'token.pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
    const pkcs11 = { module: hsm.module, tokenLabel: hsm.label, pinFile, stkLabel: 'own-config-stk' };
    writeFileSync(join(dir, 'keyledger.config.json'), JSON.stringify({ provider: 'pkcs11', pkcs11 }));
    assert.match(ok(dir, ['init']), /config\s+\S+ \(existing\)\ntoken\s+kl-e2e/);
    const rotated = JSON.parse(ok(dir, ['rotate-stk', '--json'])) as { changed: boolean; sequence: number };
    assert.deepEqual([rotated.changed, rotated.sequence], [true, 2]);
  });

  it('init, enable, rotate, encrypt, rotate-stk, decrypt under the old STK, rewrap, retire-stk, destroy-stk, checkpoint, verify', async () => {
    const dir = dirs.make();
    assert.match(ok(dir, initArgs(hsm.label)), /token\s+kl-e2e/);
    const configText = readFileSync(join(dir, 'keyledger.config.json'), 'utf8');
    const config = JSON.parse(configText) as { provider: string; pkcs11: Record<string, string> };
    assert.equal(config.provider, 'pkcs11');
    assert.deepEqual(config.pkcs11, { module: hsm.module, tokenLabel: hsm.label, pinEnv: PIN_ENV });
    assert.ok(!configText.includes(hsm.pin), 'the PIN is not in the config');

    ok(dir, ['enable-key-management', SCOPE]);
    ok(dir, ['rotate-managed-key', SCOPE]);
    const data = Buffer.from('written under the first system key');
    const sealed = succeeded(dir, ['encrypt', TENANT, '--namespace', 'orders'], { input: data }).bytes;
    assert.ok(sealed.length > data.length);

    const status = () =>
      JSON.parse(ok(dir, ['show-key-status', SCOPE, '--json'])) as { stkIdentity: string; state: string }[];
    const oldStk = status()[0]?.stkIdentity ?? '';
    const rotated = JSON.parse(ok(dir, ['rotate-stk', '--json'])) as { changed: boolean; identity: string };
    assert.equal(rotated.changed, true);
    assert.notEqual(rotated.identity, oldStk);

    // A new process, the DEK still wrapped under STK v1 in the token.
    assert.equal(ok(dir, ['decrypt'], { input: sealed }), data.toString());
    ok(dir, ['rewrap']);
    assert.ok(status().every((k) => k.stkIdentity === rotated.identity));
    await refused(dir, ['destroy-stk', rotated.identity], 'ERR_SYSTEM_KEY_NOT_RETIRED', 2);
    assert.match(ok(dir, ['retire-stk', oldStk]), /retired/);
    assert.match(
      ok(dir, ['destroy-stk', oldStk, '--reason', 'token clean-up']),
      /destroyed in the provider and recorded/,
    );
    // Recorded: a re-run does nothing, and the event is in the ledger with its reason.
    const again = JSON.parse(ok(dir, ['destroy-stk', oldStk, '--json'])) as { changed: boolean };
    assert.equal(again.changed, false);
    const exported = ok(dir, ['audit', 'export']);
    const destroyed = exported
      .split('\n')
      .filter((line) => line.includes('"SystemKeyDestroyed"'))
      .map((line) => JSON.parse(line) as { data: { identity: string }; metadata: { reason: string } });
    assert.deepEqual(
      destroyed.map((e) => [e.data.identity, e.metadata.reason]),
      [[oldStk, 'token clean-up']],
    );
    assert.equal(ok(dir, ['decrypt'], { input: sealed }), data.toString());
    ok(dir, ['checkpoint']);
    assert.match(ok(dir, ['verify']), /^verified/u);
  });
});
