import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { verifyAuditFile } from '../../src/audit/verifyAuditFile.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type { ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import { Pkcs11KeyProvider } from '../../src/providers/pkcs11/pkcs11KeyProvider.js';
import type { Pkcs11Api } from '../../src/providers/pkcs11/pkcs11Module.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { rejectsWithCode } from '../contract/keyProvider.contract.js';
import { faultyPkcs11 } from '../helpers/faultyPkcs11.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import { createSoftHsmToken } from '../helpers/softHsm.js';

/**
 * A ledger whose system key is in a SoftHSM2 token, with the token failing mid-operation (a wrapper
 * around the real pkcs11js object inside the module's worker thread injects the return value): the failing command is refused with
 * ERR_PKCS11_DEVICE and writes nothing, and the next one works on reopened sessions.
 */

const hsm = createSoftHsmToken('kl-ledger', '5555-ledger-pin');
const PIN_ENV = 'KEYLEDGER_TEST_LEDGER_HSM_PIN';
process.env[PIN_ENV] = hsm.pin;
after(() => {
  delete process.env[PIN_ENV];
  hsm.remove();
});

const TENANT = Buffer.from('hsm-ledger-tenant').toString('base64');

describe('a ledger on a PKCS#11 token whose device fails mid-operation', () => {
  // The fault is injected inside the module's worker thread, where wrap and unwrap run.
  const faulty = faultyPkcs11(hsm.dir, hsm.module);
  const load = (): Pkcs11Api => faulty.api;
  const config = {
    module: hsm.module,
    tokenLabel: hsm.label,
    pin: { env: PIN_ENV },
    stkLabel: 'ledger-stk',
    callTimeoutMs: 10_000,
  };
  const store = new MemoryEventStore();
  let ledger: Ledger;

  let systemKeys: Pkcs11KeyProvider;

  before(async () => {
    systemKeys = new Pkcs11KeyProvider(config, { load });
    (await systemKeys.createSystemKey()).dispose();
    ledger = await Ledger.open({ store, provider: new GeneratedKeyProvider({ systemKeys }) });
    await ledger.initialise();
    // A checkpoint MACed in the token under STK v1, which the last test destroys.
    await ledger.checkpoint();
  });

  after(async () => {
    await ledger.close();
    faulty.close();
  });

  it('enable-key-management: the wrap fails in the token → ERR_PKCS11_DEVICE, nothing written; then it works', async () => {
    const head = await store.headPosition();
    faulty.arm('C_Encrypt', 'CKR_DEVICE_REMOVED');
    await rejectsWithCode(ledger.admin.enableKeyManagement(TENANT, 'orders'), 'ERR_PKCS11_DEVICE');
    assert.equal(faulty.armed(), false, 'the fault was injected');
    assert.equal(await store.headPosition(), head, 'nothing was written');
    assert.deepEqual(await ledger.admin.getManagedKeys(TENANT, 'orders'), []);
    const enabled = await ledger.admin.enableKeyManagement(TENANT, 'orders');
    assert.equal(enabled.marker, 'ACTIVE');
  });

  it('rotate-managed-key: a session lost in the wrap → nothing written, the current key stays ACTIVE', async () => {
    const before = await ledger.admin.getManagedKeys(TENANT, 'orders');
    const head = await store.headPosition();
    faulty.arm('C_Encrypt', 'CKR_SESSION_HANDLE_INVALID');
    await rejectsWithCode(ledger.admin.rotateManagedKey(TENANT, 'orders'), 'ERR_PKCS11_DEVICE');
    assert.equal(await store.headPosition(), head, 'nothing was written');
    assert.deepEqual(await ledger.admin.getManagedKeys(TENANT, 'orders'), before);
    await ledger.admin.rotateManagedKey(TENANT, 'orders');
    const after = await ledger.admin.getManagedKeys(TENANT, 'orders');
    assert.deepEqual(after.map((k) => k.state).sort(), ['ACTIVE', 'INACTIVE']);
  });

  it('rotate-stk: the token fails while creating the next key → nothing recorded; a retry rotates', async () => {
    const head = await store.headPosition();
    faulty.arm('C_GenerateKey', 'CKR_DEVICE_REMOVED');
    await rejectsWithCode(ledger.admin.rotateSTK(), 'ERR_PKCS11_DEVICE');
    assert.equal(await store.headPosition(), head, 'nothing was written');
    const rotated = await ledger.admin.rotateSTK();
    assert.equal(rotated.changed, true);
    assert.equal(rotated.sequence, 2);
  });

  it('destroy-stk: a token failing to destroy writes nothing; a crash after destroying is completed by a re-run; verify and the offline check accept SystemKeyDestroyed', async () => {
    const first = ledger.systemKeys()[0];
    assert.ok(first !== undefined);
    await ledger.rewrap.start();
    await ledger.rewrap.retireSystemKey(first.identity);
    let head = await store.headPosition();
    faulty.arm('C_DestroyObject', 'CKR_DEVICE_REMOVED');
    await rejectsWithCode(ledger.rewrap.destroyRetiredSystemKey(first.identity), 'ERR_PKCS11_DEVICE');
    assert.equal(faulty.armed(), false, 'the fault was injected');
    assert.equal(await store.headPosition(), head, 'nothing was written');
    assert.deepEqual(await systemKeys.systemKeyVersions(), [1, 2], 'nothing was destroyed');

    // A crash between destroying and recording: the objects are gone, no event.
    await systemKeys.destroySystemKey(first.metadata);
    assert.deepEqual(await systemKeys.systemKeyVersions(), [2]);
    assert.equal(await store.headPosition(), head);
    assert.equal(ledger.systemKeys()[0]?.destroyedAt, null);
    // The re-run finds nothing left to destroy and records it.
    const done = await ledger.rewrap.destroyRetiredSystemKey(first.identity, { reason: 'token clean-up' });
    assert.equal(done.changed, true);
    const last = (await store.readStream(ledger.streamNames.system)).at(-1);
    assert.equal(last?.type, 'SystemKeyDestroyed');
    assert.deepEqual(last?.data, { identity: first.identity, sequence: 1, metadata: first.metadata });
    head = await store.headPosition();
    assert.equal((await ledger.rewrap.destroyRetiredSystemKey(first.identity)).changed, false);
    assert.equal(await store.headPosition(), head, 'a second re-run writes nothing');

    await ledger.checkpoint();
    const report = await ledger.verify();
    assert.equal(report.ok, true);
    assert.ok(report.macsUnavailable >= 1, 'the checkpoint under the destroyed STK is unavailable');
    assert.ok(report.macsVerified >= 1);
    const file = join(hsm.dir, 'export.jsonl');
    const out = createWriteStream(file);
    await ledger.exportAudit(out);
    out.end();
    await finished(out);
    const offline = await verifyAuditFile(file, { provider: systemKeys });
    assert.equal(offline.ok, true);
    assert.ok(offline.macsUnavailable >= 1, 'the token no longer has STK v1: unavailable, not an error');
    assert.ok(offline.macsVerified >= 1);
  });
});

describe('destroy-stk rules', () => {
  it('refuses an unknown identity, a key not retired, and a provider whose keys an operator manages', async () => {
    const scripted = new ScriptedProvider();
    // The same provider without destroySystemKey: its system keys are the operator's.
    const provider: ManagedKeyProvider = {
      kind: 'operator-managed',
      getSystemKey: () => scripted.getSystemKey(),
      unwrapSystemKey: (metadata) => scripted.unwrapSystemKey(metadata),
      getManagedKey: (scope) => scripted.getManagedKey(scope),
      unwrapKey: (metadata) => scripted.unwrapKey(metadata),
      close: () => scripted.close(),
    };
    const ledger = await Ledger.open({ store: new MemoryEventStore(), provider });
    try {
      await ledger.initialise();
      const first = ledger.systemKeys()[0]?.identity ?? '';
      await rejectsWithCode(
        ledger.rewrap.destroyRetiredSystemKey('0000000000000000'),
        'ERR_SYSTEM_KEY_NOT_FOUND',
      );
      await rejectsWithCode(ledger.rewrap.destroyRetiredSystemKey('not-hex'), 'ERR_INVALID_ARGUMENT');
      await rejectsWithCode(ledger.rewrap.destroyRetiredSystemKey(first), 'ERR_SYSTEM_KEY_NOT_RETIRED');
      scripted.rotateSystemKey('stk-2');
      await ledger.admin.rotateSTK();
      await ledger.rewrap.retireSystemKey(first);
      await rejectsWithCode(ledger.rewrap.destroyRetiredSystemKey(first), 'ERR_INVALID_ARGUMENT');
    } finally {
      await ledger.close();
    }
  });
});
