import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { keyChecksum } from '../../src/crypto/keyChecksum.js';
import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import { keyScope } from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { formatSystemKeyMetadata } from '../../src/providers/keyMetadata.js';
import { type Pkcs11Config, readPin } from '../../src/providers/pkcs11/pkcs11Config.js';
import { Pkcs11KeyProvider } from '../../src/providers/pkcs11/pkcs11KeyProvider.js';
import { loadPkcs11Module, releasePkcs11Module } from '../../src/providers/pkcs11/pkcs11Module.js';
import { workerPkcs11 } from '../../src/providers/pkcs11/pkcs11Worker.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { faultyPkcs11 } from '../helpers/faultyPkcs11.js';
import { createSoftHsmToken } from '../helpers/softHsm.js';
import { rejectsWithCode, testKeyProvider, throwsWithCode } from './keyProvider.contract.js';

// One SoftHSM2 conf for this whole file: SoftHSM reads SOFTHSM2_CONF when the module initialises.
// Every token the file uses is made before the module is first loaded.
const hsm = createSoftHsmToken('kl-contract', '1111-contract');
const PIN_TOKEN = 'kl-pin';
hsm.addToken(PIN_TOKEN, '2222-right-pin');
// Longer than the shared buffer a worker starts with (64 bytes): the buffer grows for it.
const LONG_PIN_TOKEN = 'kl-long-pin';
const LONG_PIN = 'long-pin-'.repeat(12);
hsm.addToken(LONG_PIN_TOKEN, LONG_PIN);
const LONG_PIN_ENV = 'KEYLEDGER_TEST_HSM_LONG_PIN';
process.env[LONG_PIN_ENV] = LONG_PIN;
const PIN_ENV = 'KEYLEDGER_TEST_HSM_PIN';
const WRONG_PIN_ENV = 'KEYLEDGER_TEST_HSM_WRONG_PIN';
process.env[PIN_ENV] = hsm.pin;
process.env[WRONG_PIN_ENV] = 'not-the-pin';

after(() => {
  delete process.env[PIN_ENV];
  delete process.env[WRONG_PIN_ENV];
  delete process.env[LONG_PIN_ENV];
  hsm.remove();
});

function config(overrides: Partial<Pkcs11Config> = {}): Pkcs11Config {
  return {
    module: hsm.module,
    tokenLabel: hsm.label,
    pin: { env: PIN_ENV },
    stkLabel: 'contract-stk',
    callTimeoutMs: 10_000,
    ...overrides,
  };
}

const SCOPE = keyScope(Buffer.from('hsm-custodian').toString('base64'), 'table1/cf1');
const binding = { ...SCOPE, metadataHash: metadataHashOf('pkcs11-test-dek') };

function dek(): SecretBytes {
  return SecretBytes.copyOf(Buffer.alloc(32, 0x5a));
}

testKeyProvider('generated over pkcs11 (SoftHSM2)', async () => {
  const systemKeys = new Pkcs11KeyProvider(config());
  // The first fixture creates the STK, as init would; the close() fixture finds it.
  try {
    (await systemKeys.getSystemKey()).dispose();
  } catch {
    (await systemKeys.createSystemKey()).dispose();
  }
  return {
    provider: new GeneratedKeyProvider({ systemKeys }),
    configuredScope: SCOPE,
    cleanup: async () => {},
  };
});

/** Runs `fn` on a logged-in session of the shared module, outside the provider. */
function withRawSession<T>(fn: (api: pkcs11js.PKCS11, session: Buffer) => T): T {
  const api = loadPkcs11Module(hsm.module) as unknown as pkcs11js.PKCS11;
  try {
    const slot = api.C_GetSlotList(true).find((s) => api.C_GetTokenInfo(s).label.trimEnd() === hsm.label);
    assert.ok(slot !== undefined);
    const session = api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      try {
        api.C_Login(session, pkcs11js.CKU_USER, hsm.pin);
      } catch (error) {
        if ((error as { code?: number }).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw error;
      }
      return fn(api, session);
    } finally {
      api.C_CloseSession(session);
    }
  } finally {
    releasePkcs11Module(hsm.module);
  }
}

function findKey(api: pkcs11js.PKCS11, session: Buffer, label: string): Buffer | undefined {
  api.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
  try {
    return api.C_FindObjects(session, 1)[0];
  } finally {
    api.C_FindObjectsFinal(session);
  }
}

function labelsIn(prefix: string): string[] {
  return withRawSession((api, session) => {
    api.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }]);
    let handles: Buffer[];
    try {
      handles = api.C_FindObjects(session, 100);
    } finally {
      api.C_FindObjectsFinal(session);
    }
    return handles
      .map((h) => String(api.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_LABEL }])[0]?.value))
      .filter((l) => l.startsWith(prefix));
  });
}

describe('Pkcs11KeyProvider on SoftHSM2', () => {
  let provider: Pkcs11KeyProvider;
  let stk: SystemKeyHandle;

  before(async () => {
    provider = new Pkcs11KeyProvider(config({ stkLabel: 'own-stk' }));
    stk = await provider.createSystemKey();
  });

  after(async () => {
    await provider.close();
  });

  it('creates the STK sensitive and non-extractable: the token refuses to give out CKA_VALUE', () => {
    assert.equal(stk.metadata, formatSystemKeyMetadata('own-stk.v1'));
    for (const label of ['own-stk.v1', 'own-stk.v1.mac']) {
      withRawSession((api, session) => {
        const key = findKey(api, session, label);
        assert.ok(key !== undefined, `${label} exists`);
        const flags = api.C_GetAttributeValue(session, key, [
          { type: pkcs11js.CKA_SENSITIVE },
          { type: pkcs11js.CKA_EXTRACTABLE },
          { type: pkcs11js.CKA_TOKEN },
          { type: pkcs11js.CKA_WRAP },
        ]);
        assert.deepEqual(
          flags.map((a) => (a.value as Buffer)[0]),
          [1, 0, 1, 0],
        );
        assert.throws(
          () => api.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }]),
          (error: unknown) => (error as { code?: number }).code === pkcs11js.CKR_ATTRIBUTE_SENSITIVE,
        );
      });
    }
  });

  it('wraps in the token with the software binding: a wrap of another scope or STK identity fails', async () => {
    const key = dek();
    const wrapped = stk.wrap(key, binding);
    const again = await provider.unwrapSystemKey(stk.metadata);
    const plain = again.unwrap(wrapped, binding, keyChecksum(key));
    assert.ok(plain.equals(key));
    throwsWithCode(
      () => again.unwrap(wrapped, { ...binding, namespace: SCOPE.namespace.concat('x') as never }, null),
      'ERR_KEY_UNWRAP_FAILED',
    );
    const tampered = Buffer.from(wrapped, 'base64');
    tampered[20] = (tampered[20] ?? 0) ^ 1;
    throwsWithCode(() => again.unwrap(tampered.toString('base64'), binding, null), 'ERR_KEY_UNWRAP_FAILED');
  });

  it('MACs in the token: stable per label, distinct across labels; the wrap label is refused', () => {
    const message = Buffer.from('checkpoint body');
    assert.deepEqual(stk.mac('purpose a', message), stk.mac('purpose a', message));
    assert.notDeepEqual(stk.mac('purpose a', message), stk.mac('purpose b', message));
    assert.throws(() => stk.mac('', message), TypeError);
    assert.throws(() => stk.mac('keyledger dek wrap v2', message), TypeError);
  });

  it('a second createSystemKey makes v2, current from then on; v1 still unwraps what it wrapped', async () => {
    const key = dek();
    const wrapped = stk.wrap(key, binding);
    const second = await provider.createSystemKey();
    assert.equal(second.metadata, formatSystemKeyMetadata('own-stk.v2'));
    assert.notEqual(second.identity, stk.identity);
    assert.equal((await provider.getSystemKey()).identity, second.identity);
    const old = await provider.unwrapSystemKey(formatSystemKeyMetadata('own-stk.v1'));
    assert.ok(old.unwrap(wrapped, binding, null).equals(key));
    throwsWithCode(() => second.unwrap(wrapped, binding, null), 'ERR_KEY_UNWRAP_FAILED');
  });

  it('serves only its own STK labels', async () => {
    await rejectsWithCode(
      provider.unwrapSystemKey(formatSystemKeyMetadata('contract-stk.v1')),
      'ERR_SYSTEM_KEY_NOT_CONFIGURED',
    );
  });

  it('destroySystemKey deletes both objects of one version and only that version', async () => {
    await rejectsWithCode(
      provider.destroySystemKey(formatSystemKeyMetadata('contract-stk.v1')),
      'ERR_SYSTEM_KEY_NOT_CONFIGURED',
    );
    const current = await provider.getSystemKey();
    await provider.destroySystemKey(formatSystemKeyMetadata('own-stk.v1'));
    assert.deepEqual(labelsIn('own-stk.v1'), []);
    await rejectsWithCode(
      provider.unwrapSystemKey(formatSystemKeyMetadata('own-stk.v1')),
      'ERR_PKCS11_KEY_NOT_FOUND',
    );
    assert.equal((await provider.getSystemKey()).identity, current.identity);
    // Already gone: nothing to do, no error.
    await provider.destroySystemKey(formatSystemKeyMetadata('own-stk.v1'));
  });

  it('concurrent calls share the pool without interfering', async () => {
    const keys = Array.from({ length: 16 }, (_, i) => SecretBytes.copyOf(Buffer.alloc(32, i)));
    const handles = await Promise.all(keys.map(() => provider.getSystemKey()));
    const wrapped = handles.map((h, i) => h.wrap(keys[i] as SecretBytes, binding));
    const back = await Promise.all(
      wrapped.map(async (w) =>
        (await provider.unwrapSystemKey(handles[0]?.metadata ?? '')).unwrap(w, binding, null),
      ),
    );
    for (const [i, k] of back.entries()) assert.ok(k.equals(keys[i] as SecretBytes));
  });
});

describe('Pkcs11KeyProvider faults', () => {
  it('a wrong PIN is ERR_PKCS11_PIN (incorrect); an unset PIN variable is ERR_PKCS11_PIN (missing)', async () => {
    const wrong = new Pkcs11KeyProvider(config({ tokenLabel: PIN_TOKEN, pin: { env: WRONG_PIN_ENV } }));
    await assert.rejects(wrong.getSystemKey(), (error: unknown) => {
      const e = error as { code?: string; details?: { reason?: string }; message: string };
      assert.equal(e.code, 'ERR_PKCS11_PIN');
      assert.equal(e.details?.reason, 'incorrect');
      assert.ok(!e.message.includes('not-the-pin'));
      return true;
    });
    await wrong.close();
    const unset = new Pkcs11KeyProvider(
      config({ tokenLabel: PIN_TOKEN, pin: { env: 'KEYLEDGER_TEST_NO_SUCH_PIN' } }),
    );
    await rejectsWithCode(unset.getSystemKey(), 'ERR_PKCS11_PIN');
    await unset.close();
  });

  it('an unknown token label is ERR_PKCS11_TOKEN_NOT_FOUND', async () => {
    const provider = new Pkcs11KeyProvider(config({ tokenLabel: 'no-such-token' }));
    await rejectsWithCode(provider.getSystemKey(), 'ERR_PKCS11_TOKEN_NOT_FOUND');
    await provider.close();
  });

  it('a missing module path is ERR_PKCS11_MODULE', async () => {
    const provider = new Pkcs11KeyProvider(config({ module: `${hsm.dir}/no-such-module.so` }));
    await rejectsWithCode(provider.getSystemKey(), 'ERR_PKCS11_MODULE');
    await provider.close();
  });

  it('an STK label not in the token is ERR_PKCS11_KEY_NOT_FOUND, and nothing is created', async () => {
    const provider = new Pkcs11KeyProvider(config({ stkLabel: 'absent-stk' }));
    await rejectsWithCode(provider.getSystemKey(), 'ERR_PKCS11_KEY_NOT_FOUND');
    await rejectsWithCode(
      provider.unwrapSystemKey(formatSystemKeyMetadata('absent-stk.v1')),
      'ERR_PKCS11_KEY_NOT_FOUND',
    );
    await provider.close();
    assert.deepEqual(labelsIn('absent-stk'), []);
  });

  it('a key object without CKA_ENCRYPT (or a MAC key without CKA_SIGN) is ERR_PKCS11_KEY_NOT_PERMITTED', async () => {
    withRawSession((api, session) => {
      const base = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      ];
      api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        ...base,
        { type: pkcs11js.CKA_LABEL, value: 'noperm-stk.v1' },
        { type: pkcs11js.CKA_ENCRYPT, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: true },
      ]);
      api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, [
        ...base,
        { type: pkcs11js.CKA_LABEL, value: 'noperm-stk.v1.mac' },
        { type: pkcs11js.CKA_SIGN, value: true },
      ]);
    });
    const provider = new Pkcs11KeyProvider(config({ stkLabel: 'noperm-stk' }));
    await assert.rejects(provider.getSystemKey(), (error: unknown) => {
      const e = error as { code?: string; details?: { attribute?: string } };
      assert.equal(e.code, 'ERR_PKCS11_KEY_NOT_PERMITTED');
      assert.equal(e.details?.attribute, 'CKA_ENCRYPT');
      return true;
    });
    await provider.close();
  });

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
