import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { keyChecksum } from '../../src/crypto/keyChecksum.js';
import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { formatSystemKeyMetadata } from '../../src/providers/keyMetadata.js';
import { Pkcs11KeyProvider } from '../../src/providers/pkcs11/pkcs11KeyProvider.js';
import { loadPkcs11Module, releasePkcs11Module } from '../../src/providers/pkcs11/pkcs11Module.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { useSoftHsmTestFile } from '../helpers/softHsm.js';
import { rejectsWithCode, testKeyProvider, throwsWithCode } from './keyProvider.contract.js';

// One SoftHSM2 conf for this whole file: SoftHSM reads SOFTHSM2_CONF when the module initialises.
// Every token the file uses is made before the module is first loaded.
const PIN_TOKEN = 'kl-pin';
const PIN_ENV = 'KEYLEDGER_TEST_HSM_PIN';
const WRONG_PIN_ENV = 'KEYLEDGER_TEST_HSM_WRONG_PIN';
const {
  hsm,
  config,
  scope: SCOPE,
  binding,
  dek,
} = useSoftHsmTestFile({
  label: 'kl-contract',
  pin: '1111-contract',
  pinEnv: PIN_ENV,
  stkLabel: 'contract-stk',
  tokens: { [PIN_TOKEN]: '2222-right-pin' },
  env: { [WRONG_PIN_ENV]: 'not-the-pin' },
});

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
});
