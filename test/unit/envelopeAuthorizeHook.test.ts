import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, it } from 'node:test';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import { isKeyledgerError, KeyledgerError } from '../../src/domain/errors.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * decryptStream's `authorize` hook (what a server checks its caller's grant with): called with the
 * custodian the header's key belongs to, before any plaintext; what it throws is the stream's
 * failure as is, not the uniform ERR_DECRYPTION_FAILED.
 */
const ACME = Buffer.from('acme').toString('base64');

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
  await ledger.admin.enableKeyManagement(ACME, 'orders');
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from([Buffer.from('a record of acme')]),
    ledger.envelopeStreams.encryptStream({ custodian: ACME, namespaces: ['orders'] }),
    new Writable({
      write(chunk: Buffer, _e, done) {
        chunks.push(chunk);
        done();
      },
    }),
  );
  return { ledger, ciphertext: Buffer.concat(chunks) };
}

async function decrypt(ledger: Ledger, ciphertext: Buffer, authorize: (custodian: string) => void) {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([ciphertext]),
    ledger.envelopeStreams.decryptStream({ authorize }),
    new Writable({
      write(chunk: Buffer, _e, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(out);
}

describe('decryptStream: the authorize hook', () => {
  it('is called once with the header key’s custodian; allowed, the plaintext comes out', async () => {
    const { ledger, ciphertext } = await setup();
    const seen: string[] = [];
    const plaintext = await decrypt(ledger, ciphertext, (custodian) => seen.push(custodian));
    assert.deepEqual(seen, [ACME]);
    assert.equal(plaintext.toString('utf8'), 'a record of acme');
  });

  it('a refusal fails the stream with that error, and no plaintext is written', async () => {
    const { ledger, ciphertext } = await setup();
    const refusal = new KeyledgerError('ERR_FORBIDDEN', 'no', {
      principal: 'p',
      permission: 'decrypt',
      custodian: ACME,
    });
    const out: Buffer[] = [];
    await assert.rejects(
      pipeline(
        Readable.from([ciphertext]),
        ledger.envelopeStreams.decryptStream({
          authorize: () => {
            throw refusal;
          },
        }),
        new Writable({
          write(chunk: Buffer, _e, done) {
            out.push(chunk);
            done();
          },
        }),
      ),
      (error) => error === refusal && isKeyledgerError(error, 'ERR_FORBIDDEN'),
    );
    assert.equal(out.length, 0);
  });

  it('a bad ciphertext is still the uniform failure, whatever the hook', async () => {
    const { ledger, ciphertext } = await setup();
    const tampered = Buffer.from(ciphertext);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    await assert.rejects(
      decrypt(ledger, tampered, () => {}),
      (error) => error instanceof DecryptionFailedError,
    );
  });
});
