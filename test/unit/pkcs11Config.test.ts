import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readPin, resolvePkcs11Config } from '../../src/providers/pkcs11/pkcs11Config.js';
import { throwsWithCode } from '../contract/keyProvider.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'keyledger-pkcs11-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the pkcs11 config section', () => {
  it('resolves paths from the config folder and defaults the STK label', () => {
    const config = resolvePkcs11Config({ module: 'lib/p11.so', tokenLabel: 'kl', pinFile: 'pin' }, dir);
    assert.deepEqual(config, {
      module: join(dir, 'lib/p11.so'),
      tokenLabel: 'kl',
      pin: { file: join(dir, 'pin') },
      stkLabel: 'keyledger-stk',
      callTimeoutMs: 10_000,
    });
  });

  it('needs exactly one PIN source, a token label and a lowercase STK label (ERR_INVALID_CONFIG)', () => {
    const base = { module: '/m.so', tokenLabel: 'kl' };
    for (const bad of [
      base,
      { ...base, pinEnv: 'PIN', pinFile: 'pin' },
      { module: '/m.so', pinEnv: 'PIN' },
      { ...base, pinEnv: 'PIN', stkLabel: 'Upper' },
      { ...base, pinEnv: 'PIN', stkLabel: 'with.dot' },
      { ...base, pinEnv: 'PIN', pin: '1234' },
    ]) {
      throwsWithCode(() => resolvePkcs11Config(bad, dir), 'ERR_INVALID_CONFIG');
    }
  });

  it('reads the PIN from a 0600 file, refuses a readable one, and reports a missing one without the PIN', () => {
    const file = join(dir, 'token.pin');
    writeFileSync(file, '9876-secret\n', { mode: 0o600 });
    assert.equal(readPin({ file }, 'kl').toString('utf8'), '9876-secret');
    chmodSync(file, 0o644);
    throwsWithCode(() => readPin({ file }, 'kl'), 'ERR_INVALID_CONFIG');
    throwsWithCode(() => readPin({ file: join(dir, 'absent') }, 'kl'), 'ERR_PKCS11_PIN');
    throwsWithCode(() => readPin({ env: 'KEYLEDGER_TEST_UNSET_PIN_VARIABLE' }, 'kl'), 'ERR_PKCS11_PIN');
  });
});
