import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, it } from 'node:test';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import type { DecryptionKeyInfo } from '../../src/crypto/expectedScope.js';
import { KeyledgerError } from '../../src/domain/errors.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * Issue 11, finding 8: a service decrypting for tenants says which tenant it acts for, and a
 * ciphertext of another tenant fails with the one uniform DecryptionFailedError; the result says
 * which scope and key were used.
 */
const ACME = Buffer.from('acme').toString('base64');
const GLOBEX = Buffer.from('globex').toString('base64');
const PLAINTEXT = Buffer.from('a record of acme');

const opened: Ledger[] = [];
afterEach(async () => {
  for (const ledger of opened.splice(0)) await ledger.close();
});

async function setup() {
  const ledger = await Ledger.open({
    store: new MemoryEventStore(),
    provider: new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() }),
    actor: 'test',
    resolver: { dynamicLookup: false },
  });
  opened.push(ledger);
  await ledger.initialise();
  const orders = (await ledger.admin.enableKeyManagement(ACME, 'orders')).key;
  await ledger.admin.enableKeyManagement(ACME, 'billing');
  await ledger.admin.enableKeyManagement(GLOBEX, 'orders');
  assert.ok(orders !== null && orders !== undefined);
  const ciphertext = await ledger.envelope.encrypt(PLAINTEXT, { custodian: ACME, namespaces: ['orders'] });
  return { ledger, orders, ciphertext };
}

function isUniformFailure(error: unknown): true {
  assert.ok(error instanceof DecryptionFailedError, `expected DecryptionFailedError, got ${String(error)}`);
  assert.equal(error.message, 'decryption failed');
  assert.deepEqual(error.details, {});
  assert.equal(error.cause, undefined);
  return true;
}

async function decryptStream(
  ledger: Ledger,
  ciphertext: Buffer,
  options: Parameters<Ledger['envelopeStreams']['decryptStream']>[0],
): Promise<{ plaintext: Buffer; info: DecryptionKeyInfo | null; announced: DecryptionKeyInfo[] }> {
  const chunks: Buffer[] = [];
  const stream = ledger.envelopeStreams.decryptStream(options);
  const announced: DecryptionKeyInfo[] = [];
  stream.on('key', (info: DecryptionKeyInfo) => announced.push(info));
  await pipeline(
    Readable.from([ciphertext]),
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  return { plaintext: Buffer.concat(chunks), info: stream.keyInfo, announced };
}

describe('decrypt with an expected scope (issue 11, finding 8)', () => {
  it('decryptWithInfo answers the plaintext with the scope and key it was under', async () => {
    const { ledger, orders, ciphertext } = await setup();
    const result = await ledger.envelope.decryptWithInfo(ciphertext);
    assert.deepEqual(result, {
      plaintext: PLAINTEXT,
      custodian: ACME,
      namespace: 'orders',
      keyId: orders.keyId,
      metadataHash: orders.metadataHash,
    });
    // decrypt keeps answering a Buffer.
    assert.deepEqual(await ledger.envelope.decrypt(ciphertext), PLAINTEXT);
  });

  it('the expected custodian (and namespaces) must match, else the one uniform failure', async () => {
    const { ledger, ciphertext } = await setup();
    for (const expected of [
      { custodian: ACME },
      { custodian: ACME, namespaces: ['orders'] },
      { custodian: ACME, namespaces: ['billing', 'orders'] },
    ]) {
      assert.deepEqual(
        await ledger.envelope.decrypt(ciphertext, expected),
        PLAINTEXT,
        JSON.stringify(expected),
      );
    }
    for (const expected of [
      { custodian: GLOBEX },
      { custodian: GLOBEX, namespaces: ['orders'] },
      { custodian: '*' },
      { custodian: ACME, namespaces: ['billing'] },
      { custodian: ACME, namespaces: [] },
    ]) {
      await assert.rejects(
        ledger.envelope.decrypt(ciphertext, expected),
        isUniformFailure,
        JSON.stringify(expected),
      );
      await assert.rejects(ledger.envelope.decryptWithInfo(ciphertext, expected), isUniformFailure);
    }
    // After a failure for another scope, the right expectation still decrypts (the memo is not a bypass).
    assert.deepEqual(await ledger.envelope.decrypt(ciphertext, { custodian: ACME }), PLAINTEXT);
    await assert.rejects(ledger.envelope.decrypt(ciphertext, { custodian: GLOBEX }), isUniformFailure);
  });

  it('a custodian written in a non-canonical way still matches; bad expectations are input errors', async () => {
    const { ledger, ciphertext } = await setup();
    const globalCiphertext = await (async () => {
      await ledger.admin.enableKeyManagement('*', '*');
      return ledger.envelope.encrypt(PLAINTEXT, { custodian: '*', namespaces: ['*'] });
    })();
    assert.deepEqual(await ledger.envelope.decrypt(globalCiphertext, { custodian: '*' }), PLAINTEXT);
    assert.deepEqual(await ledger.envelope.decrypt(globalCiphertext, { custodian: 'Kg==' }), PLAINTEXT);
    await assert.rejects(
      ledger.envelope.decrypt(ciphertext, { custodian: 'not base64!' }),
      (error: unknown) => {
        assert.ok(error instanceof KeyledgerError && !(error instanceof DecryptionFailedError));
        assert.equal(error.code, 'ERR_INVALID_CUSTODIAN');
        return true;
      },
    );
    await assert.rejects(ledger.envelope.decrypt(ciphertext, { custodian: ACME, namespaces: [''] }), {
      code: 'ERR_INVALID_NAMESPACE',
    });
    await assert.rejects(ledger.envelope.decrypt(ciphertext, { namespaces: ['orders'] }), TypeError);
  });

  it('the streaming decrypt takes the same expectation, and tells the scope and key before any plaintext', async () => {
    const { ledger, orders } = await setup();
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([PLAINTEXT]),
      ledger.envelopeStreams.encryptStream({ custodian: ACME, namespaces: ['orders'] }),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          chunks.push(chunk);
          callback();
        },
      }),
    );
    const ciphertext = Buffer.concat(chunks);
    const expectedInfo = {
      custodian: ACME,
      namespace: 'orders',
      keyId: orders.keyId,
      metadataHash: orders.metadataHash,
    };
    const plain = await decryptStream(ledger, ciphertext, {});
    assert.deepEqual(plain, { plaintext: PLAINTEXT, info: expectedInfo, announced: [expectedInfo] });
    const scoped = await decryptStream(ledger, ciphertext, { custodian: ACME, namespaces: ['orders'] });
    assert.deepEqual(scoped.plaintext, PLAINTEXT);
    for (const expected of [{ custodian: GLOBEX }, { custodian: ACME, namespaces: ['billing'] }]) {
      const out: Buffer[] = [];
      await assert.rejects(
        pipeline(
          Readable.from([ciphertext]),
          ledger.envelopeStreams.decryptStream(expected),
          new Writable({
            write(chunk: Buffer, _encoding, callback) {
              out.push(chunk);
              callback();
            },
          }),
        ),
        isUniformFailure,
      );
      assert.deepEqual(out, [], 'nothing is emitted for another scope');
    }
  });
});
