import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { LAYOUT, open, parse, seal } from '../helpers/envelopeFixtures.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * `encrypt` writes header, body and tag into one output buffer, with the header built in scratch
 * space and nonces drawn from a pool. Every ciphertext must be, byte for byte, what the documented
 * format gives for the salt and nonce it drew (the independent implementation in envelopeFixtures),
 * at sizes on either side of Node's buffer pool (4 KiB) and of the nonce pool's refill.
 */
const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const TARGET = { custodian: CUST, namespaces: [NS] };
const KiB = 1024;
const SIZES = [
  0,
  1,
  4 * KiB - LAYOUT.overhead - 1,
  4 * KiB - LAYOUT.overhead,
  4 * KiB,
  64 * KiB + 1,
  3 * 64 * KiB + 5,
];

async function setup() {
  const store = new MemoryEventStore();
  const scripted = new ScriptedProvider();
  const ledger = await Ledger.open({
    store,
    provider: scripted,
    actor: 'test',
    resolver: { dynamicLookup: false },
  });
  await ledger.initialise();
  scripted.setKey(keyScope(CUST, NS), 'k1');
  await ledger.admin.enableKeyManagement(CUST, NS);
  const dek = scripted.bytesOf('k1');
  assert.ok(dek !== undefined);
  return { ledger, dek };
}

describe('Envelope.encrypt into one buffer', () => {
  const opened: Ledger[] = [];
  after(async () => {
    for (const ledger of opened) await ledger.close();
  });

  for (const aad of [undefined, Buffer.from('row 7')]) {
    it(`every size on a boundary is the documented format, byte for byte (${aad === undefined ? 'no AAD' : 'AAD'})`, async () => {
      const { ledger, dek } = await setup();
      opened.push(ledger);
      const options = aad === undefined ? TARGET : { ...TARGET, aad };
      for (const size of SIZES) {
        const plaintext = randomBytes(size);
        const ct = await ledger.envelope.encrypt(plaintext, options);
        assert.equal(ct.length, LAYOUT.overhead + size, `length at ${size}`);
        const p = parse(ct);
        const rebuilt = seal({
          dek,
          keyId: p.keyId,
          salt: p.salt,
          nonce: p.nonce,
          plaintext,
          ...(aad === undefined ? {} : { aad }),
        });
        assert.ok(ct.equals(rebuilt), `every byte as the format gives at ${size}`);
        assert.deepEqual(open(dek, ct, aad), plaintext);
        assert.deepEqual(await ledger.envelope.decrypt(ct, aad === undefined ? {} : { aad }), plaintext);
        // encryptParts gives the same format in three pieces.
        const parts = await ledger.envelope.encryptParts(plaintext, options);
        const joined = Buffer.concat(parts);
        const q = parse(joined);
        assert.ok(
          joined.equals(
            seal({
              dek,
              keyId: q.keyId,
              salt: q.salt,
              nonce: q.nonce,
              plaintext,
              ...(aad === undefined ? {} : { aad }),
            }),
          ),
        );
      }
    });
  }

  it('consecutive ciphertexts never share bytes, and nonces never repeat across pool refills', async () => {
    const { ledger, dek } = await setup();
    opened.push(ledger);
    // More messages than one nonce pool holds (341), small enough to share Node's buffer pool.
    const plaintexts = Array.from({ length: 800 }, (_, i) => randomBytes(i % 40));
    const cts: Buffer[] = [];
    for (const plaintext of plaintexts) cts.push(await ledger.envelope.encrypt(plaintext, TARGET));
    for (const [i, ct] of cts.entries()) assert.deepEqual(open(dek, ct), plaintexts[i]);
    const nonces = new Set(cts.map((ct) => parse(ct).nonce.toString('hex')));
    assert.equal(nonces.size, cts.length, 'every nonce is fresh');
    // Changing one leaves the others as they were.
    (cts[0] as Buffer).fill(0xff);
    for (const [i, ct] of cts.entries()) if (i > 0) assert.deepEqual(open(dek, ct), plaintexts[i]);
  });
});
