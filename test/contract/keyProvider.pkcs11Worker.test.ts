import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { keyChecksum } from '../../src/crypto/keyChecksum.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { readPin } from '../../src/providers/pkcs11/pkcs11Config.js';
import { Pkcs11KeyProvider } from '../../src/providers/pkcs11/pkcs11KeyProvider.js';
import { workerPkcs11 } from '../../src/providers/pkcs11/pkcs11Worker.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { faultyPkcs11 } from '../helpers/faultyPkcs11.js';
import { useSoftHsmTestFile } from '../helpers/softHsm.js';
import { rejectsWithCode, throwsWithCode } from './keyProvider.contract.js';

/**
 * The pkcs11 provider's worker thread (pkcs11Worker.ts) on SoftHSM2: a module that hangs (deadline,
 * then recovery on a new worker), faults injected inside the worker mid-wrap/unwrap/MAC (stable
 * codes, reopened sessions), and the secrets that cross to it (DEK in and out, PIN) lying in shared
 * memory that is zeroed after every call.
 */

// Longer than the shared buffer a worker starts with (64 bytes): the buffer grows for it.
const LONG_PIN_TOKEN = 'kl-long-pin';
const LONG_PIN = 'long-pin-'.repeat(12);
const PIN_ENV = 'KEYLEDGER_TEST_WORKER_HSM_PIN';
const LONG_PIN_ENV = 'KEYLEDGER_TEST_HSM_LONG_PIN';
// One SoftHSM2 conf for this whole file (SoftHSM reads SOFTHSM2_CONF when the module initialises).
const { hsm, config, binding, dek } = useSoftHsmTestFile({
  label: 'kl-worker',
  pin: '6666-worker',
  pinEnv: PIN_ENV,
  stkLabel: 'own-stk',
  tokens: { [LONG_PIN_TOKEN]: LONG_PIN },
  env: { [LONG_PIN_ENV]: LONG_PIN },
});

before(async () => {
  const provider = new Pkcs11KeyProvider(config());
  (await provider.createSystemKey()).dispose();
  await provider.close();
});

describe('the pkcs11 worker: deadlines and faults inside it', () => {
  it('a module that does not answer fails the call with ERR_PKCS11_TIMEOUT at its deadline; the next call works', async () => {
    // A stand-in for a module that hangs once: the first slot list never returns, later ones list
    // no slots; every call needs the module loaded (so a new worker must load it again).
    const binding = join(hsm.dir, 'hungPkcs11.cjs');
    const hungOnce = join(hsm.dir, 'hung-once');
    writeFileSync(
      binding,
      `const fs = require('node:fs');
class Pkcs11Error extends Error { constructor(m, code, method) { super(m); this.code = code; this.method = method; } }
class PKCS11 {
  load() { this.loaded = true; }
  C_Initialize() {} C_Finalize() {} close() {}
  C_GetSlotList() {
    if (!this.loaded) throw new Pkcs11Error('CKR_CRYPTOKI_NOT_INITIALIZED', 0x190, 'C_GetSlotList');
    if (!fs.existsSync(${JSON.stringify(hungOnce)})) { fs.writeFileSync(${JSON.stringify(hungOnce)}, ''); for (;;) {} }
    return [];
  }
}
module.exports = { PKCS11, Pkcs11Error };`,
    );
    const api = workerPkcs11(200, binding);
    api.load('hung-module');
    const provider = new Pkcs11KeyProvider(config({ callTimeoutMs: 200 }), { load: () => api });
    try {
      const started = Date.now();
      await assert.rejects(provider.getSystemKey(), (error: unknown) => {
        const e = error as { code?: string; details?: unknown };
        assert.equal(e.code, 'ERR_PKCS11_TIMEOUT');
        assert.deepEqual(e.details, { tokenLabel: hsm.label, operation: 'C_GetSlotList', ms: 200 });
        return true;
      });
      assert.ok(Date.now() - started < 5_000, 'the call ends near its deadline');
      // A new worker, the module loaded again: an answer (no slots), not a hang or a raw error.
      await rejectsWithCode(provider.getSystemKey(), 'ERR_PKCS11_TOKEN_NOT_FOUND');
    } finally {
      await provider.close();
      api.close();
    }
  });

  for (const [name, method] of [
    ['CKR_DEVICE_REMOVED', 'C_Encrypt'],
    ['CKR_SESSION_HANDLE_INVALID', 'C_Decrypt'],
    ['CKR_DEVICE_REMOVED', 'C_Sign'],
  ] as const) {
    it(`${name} in ${method} (inside the worker) is ERR_PKCS11_DEVICE, and the next call reopens sessions and works`, async () => {
      const faulty = faultyPkcs11(hsm.dir, hsm.module);
      const provider = new Pkcs11KeyProvider(config({ stkLabel: 'own-stk' }), { load: () => faulty.api });
      try {
        const handle = await provider.getSystemKey();
        const key = dek();
        const wrapped = handle.wrap(key, binding);
        const sessionsBefore = faulty.opened();
        faulty.arm(method, name);
        const step = (): unknown =>
          method === 'C_Encrypt'
            ? handle.wrap(key, binding)
            : method === 'C_Decrypt'
              ? handle.unwrap(wrapped, binding, null)
              : handle.mac('purpose', Buffer.from('m'));
        const started = Date.now();
        throwsWithCode(step, 'ERR_PKCS11_DEVICE');
        assert.ok(Date.now() - started < 5_000, 'the failure is an answer, not a wait for the deadline');
        assert.equal(faulty.armed(), false, 'the fault was injected');
        assert.ok(
          faulty.api.sharedSecrets().every((b) => b === 0),
          'no DEK bytes left in shared memory',
        );
        // The next call recovers on a new session.
        step();
        assert.ok(handle.unwrap(handle.wrap(key, binding), binding, null).equals(key));
        assert.ok(faulty.opened() > sessionsBefore, 'a new session was opened');
      } finally {
        await provider.close();
        faulty.close();
      }
    });
  }

  it('a module failing at a deadline inside a wrap: ERR_PKCS11_TIMEOUT near the deadline, then recovery', async () => {
    // C_Encrypt of the first wrap never returns: the worker is abandoned, a new one loads the
    // module again (the binding hangs once per process, so the new worker's calls answer).
    const bindingFile = join(hsm.dir, 'hungEncrypt.cjs');
    const hungOnce = join(hsm.dir, 'hung-encrypt-once');
    writeFileSync(
      bindingFile,
      `const fs = require('node:fs');
const real = require(${JSON.stringify(createRequire(import.meta.url).resolve('pkcs11js'))});
class PKCS11 {
  constructor() {
    const inner = new real.PKCS11();
    return new Proxy(inner, { get(target, property) {
      const value = target[property];
      if (typeof value !== 'function') return value;
      return (...args) => {
        if (property === 'C_Encrypt' && !fs.existsSync(${JSON.stringify(hungOnce)})) {
          fs.writeFileSync(${JSON.stringify(hungOnce)}, '');
          for (;;) {}
        }
        return value.apply(target, args);
      };
    } });
  }
}
module.exports = { PKCS11, Pkcs11Error: real.Pkcs11Error };`,
    );
    const api = workerPkcs11(500, bindingFile);
    api.load(hsm.module);
    try {
      api.C_Initialize();
    } catch (error) {
      if ((error as { code?: number }).code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw error;
    }
    const provider = new Pkcs11KeyProvider(config({ stkLabel: 'own-stk', callTimeoutMs: 500 }), {
      load: () => api,
    });
    try {
      const handle = await provider.getSystemKey();
      const key = dek();
      const started = Date.now();
      assert.throws(
        () => handle.wrap(key, binding),
        (error: unknown) => {
          const e = error as { code?: string; details?: unknown };
          assert.equal(e.code, 'ERR_PKCS11_TIMEOUT');
          assert.deepEqual(e.details, { tokenLabel: hsm.label, operation: 'C_Encrypt', ms: 500 });
          return true;
        },
      );
      assert.ok(Date.now() - started < 5_000, 'the call ends near its deadline');
      assert.ok(
        api.sharedSecrets().every((b) => b === 0),
        'the DEK is zeroed even after a deadline',
      );
      assert.ok(handle.unwrap(handle.wrap(key, binding), binding, null).equals(key));
    } finally {
      await provider.close();
      api.close();
    }
  });
});

describe('secrets crossing to the worker thread', () => {
  it('the DEK (in and out) lies in shared memory during the call and is zeroed after it; so is the PIN', async () => {
    const faulty = faultyPkcs11(hsm.dir, hsm.module);
    const provider = new Pkcs11KeyProvider(config({ stkLabel: 'own-stk' }), { load: () => faulty.api });
    try {
      // The first call logs in: the PIN crossed in shared memory and is gone from it.
      const handle = await provider.getSystemKey();
      assert.ok(
        faulty.api.sharedSecrets().every((b) => b === 0),
        'no PIN bytes left',
      );
      const key = SecretBytes.copyOf(Buffer.alloc(32, 0xa5));
      const wrapped = handle.wrap(key, binding);
      assert.deepEqual(faulty.secretArguments(), ['C_Encrypt:true']);
      assert.ok(
        faulty.api.sharedSecrets().every((b) => b === 0),
        'no DEK bytes left after a wrap',
      );
      const back = handle.unwrap(wrapped, binding, keyChecksum(key));
      assert.deepEqual(faulty.secretArguments(), ['C_Decrypt:true']);
      assert.ok(back.equals(key));
      assert.ok(
        faulty.api.sharedSecrets().every((b) => b === 0),
        'no DEK bytes left after an unwrap',
      );
      // A failed unwrap (wrong binding) leaves nothing either.
      throwsWithCode(
        () => handle.unwrap(wrapped, { ...binding, metadataHash: metadataHashOf('other') }, null),
        'ERR_KEY_UNWRAP_FAILED',
      );
      assert.ok(
        faulty.api.sharedSecrets().every((b) => b === 0),
        'no bytes left after a failed unwrap',
      );
    } finally {
      await provider.close();
      faulty.close();
    }
  });

  it('a PIN longer than the shared buffer logs in through a larger one, zeroed after', async () => {
    const faulty = faultyPkcs11(hsm.dir, hsm.module);
    const provider = new Pkcs11KeyProvider(
      config({ tokenLabel: LONG_PIN_TOKEN, pin: { env: LONG_PIN_ENV }, stkLabel: 'long-stk' }),
      { load: () => faulty.api },
    );
    try {
      // Logged in (a refused PIN would be ERR_PKCS11_PIN); the token simply has no STK yet.
      await rejectsWithCode(provider.getSystemKey(), 'ERR_PKCS11_KEY_NOT_FOUND');
      const shared = faulty.api.sharedSecrets();
      assert.ok(shared.length >= Buffer.byteLength(LONG_PIN));
      assert.ok(
        shared.every((b) => b === 0),
        'no PIN bytes left',
      );
    } finally {
      await provider.close();
      faulty.close();
    }
  });

  it("readPin gives bytes: a file's trailing newline is dropped, the bytes are the PIN", () => {
    const file = join(hsm.dir, 'pin-bytes');
    writeFileSync(file, 'pin-\u00e9\r\n', { mode: 0o600 });
    const pin = readPin({ file }, hsm.label);
    assert.ok(Buffer.isBuffer(pin));
    assert.equal(pin.toString('utf8'), 'pin-\u00e9');
  });
});
