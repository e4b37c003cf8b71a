import assert from 'node:assert/strict';
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { EnvelopeStreams } from '../../src/crypto/envelopeStream.js';
import { StreamEncryptKeys } from '../../src/crypto/streamEncryptKeys.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { encrypt } from '../../src/operations/cryptoOperations.js';
import { ledgerHost, openScriptedLedger } from '../helpers/scriptedLedger.js';

/**
 * The stream format's one-buffer encryption with derived keys reused across messages
 * (StreamEncryptKeys): every ciphertext is still the documented format, opened here by an
 * independent reading of docs/formats.md (HKDF from node:crypto, AES-GCM per chunk); a derived key
 * serves its budget of messages and no more; nonce prefixes never repeat under one derived key; and
 * a derived key is zeroed when its DEK leaves L1.
 */
const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const TARGET = { custodian: CUST, namespaces: [NS] };
/** Layout restated by hand from docs/formats.md (not imported from src). */
const L = { header: 96, keyId: 5, salt: 21, commitment: 53, chunkSize: 85, prefix: 89, tag: 16 } as const;

const opened: Ledger[] = [];
after(async () => {
  for (const ledger of opened.splice(0)) await ledger.close();
});

async function setup() {
  const { ledger, scripted } = await openScriptedLedger([CUST], NS);
  opened.push(ledger);
  const dek = scripted.bytesOf('k1');
  assert.ok(dek !== undefined);
  return { ledger, dek: Buffer.from(dek) };
}

function info(label: string, keyId: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`keyledger-v1 ${label}`, 'ascii'), Buffer.of(0, 2), keyId]);
}

/** The plaintext of a stream-format ciphertext under `dek`, read as the format documents it. */
function openStream(dek: Buffer, ct: Buffer, aad = Buffer.alloc(0)): Buffer {
  const header = ct.subarray(0, L.header);
  assert.deepEqual(header.subarray(0, 5), Buffer.from([0x4b, 0x4c, 0x45, 1, 2]));
  const keyId = header.subarray(L.keyId, L.keyId + 16);
  const salt = header.subarray(L.salt, L.salt + 32);
  const key = Buffer.from(hkdfSync('sha256', dek, salt, info('key', keyId), 32));
  const commitment = Buffer.from(hkdfSync('sha256', dek, salt, info('commit', keyId), 32));
  assert.deepEqual(header.subarray(L.commitment, L.commitment + 32), commitment, 'key commitment');
  const chunk = header.readUInt32BE(L.chunkSize);
  const out: Buffer[] = [];
  let at: number = L.header;
  for (let i = 0; ; i++) {
    const final = ct.length - at < chunk + L.tag;
    const end = final ? ct.length : at + chunk + L.tag;
    const nonce = Buffer.concat([header.subarray(L.prefix, L.header), Buffer.alloc(5)]);
    nonce.writeUInt32BE(i, 7);
    nonce[11] = final ? 1 : 0;
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.concat([header, aad]));
    decipher.setAuthTag(ct.subarray(end - L.tag, end));
    out.push(decipher.update(ct.subarray(at, end - L.tag)), decipher.final());
    at = end;
    if (final) break;
  }
  return Buffer.concat(out);
}

const saltOf = (ct: Buffer) => ct.toString('hex', L.salt, L.salt + 32);
const prefixOf = (ct: Buffer) => ct.toString('hex', L.prefix, L.header);

describe('EnvelopeStreams.encryptBuffer reusing derived keys', () => {
  it('one salt per budget of messages; every prefix fresh; every ciphertext the documented format', async () => {
    const { ledger, dek } = await setup();
    const streams = new EnvelopeStreams(ledger.resolver, { streamsPerDerivedKey: 3 });
    const cts: Buffer[] = [];
    const pts: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const pt = randomBytes(i * 7);
      const aad = i % 2 === 0 ? undefined : Buffer.from(`row ${i}`);
      const options = { ...TARGET, chunkSize: 16, ...(aad === undefined ? {} : { aad }) };
      const { ciphertext } = await streams.encryptBuffer(pt, options);
      assert.deepEqual(openStream(dek, ciphertext, aad), pt, `message ${i}`);
      // The library's own stream decrypt reads it too.
      const decrypting = streams.decryptStream(aad === undefined ? {} : { aad });
      const back: Buffer[] = [];
      decrypting.on('data', (c: Buffer) => back.push(c));
      decrypting.end(ciphertext);
      await new Promise((resolve, reject) => decrypting.once('end', resolve).once('error', reject));
      assert.deepEqual(Buffer.concat(back), pt);
      cts.push(ciphertext);
      pts.push(pt);
    }
    const salts = cts.map(saltOf);
    for (const group of [salts.slice(0, 3), salts.slice(3, 6), salts.slice(6, 9)]) {
      assert.equal(new Set(group).size, 1, 'one salt per group of 3');
    }
    assert.equal(new Set([salts[0], salts[3], salts[6], salts[9]]).size, 4, 'a new salt after each budget');
    assert.equal(new Set(cts.map(prefixOf)).size, cts.length, 'no nonce prefix twice');
    streams.close();
  });

  it('the default budget keeps one derived key across many messages, prefixes all distinct', async () => {
    const { ledger, dek } = await setup();
    const streams = new EnvelopeStreams(ledger.resolver, { streamsPerDerivedKey: 2 ** 24 });
    const cts: Buffer[] = [];
    for (let i = 0; i < 300; i++)
      cts.push((await streams.encryptBuffer(Buffer.of(i % 256), TARGET)).ciphertext);
    assert.equal(new Set(cts.map(saltOf)).size, 1);
    assert.equal(new Set(cts.map(prefixOf)).size, 300);
    for (const [i, ct] of cts.entries()) assert.deepEqual(openStream(dek, ct), Buffer.of(i % 256));
    streams.close();
  });

  it('without the option every message draws its own salt (encryptStream always does)', async () => {
    const { ledger } = await setup();
    const streams = new EnvelopeStreams(ledger.resolver);
    const a = (await streams.encryptBuffer(Buffer.of(1), TARGET)).ciphertext;
    const b = (await streams.encryptBuffer(Buffer.of(1), TARGET)).ciphertext;
    assert.notEqual(saltOf(a), saltOf(b));
  });

  it('a derived key is zeroed when its DEK leaves L1, and the next message derives anew', async () => {
    const { ledger, dek } = await setup();
    const keys = new StreamEncryptKeys(ledger.resolver);
    const resolved = await ledger.resolver.resolveActive(ledger.resolver.target(CUST, [NS]));
    assert.ok(resolved !== null);
    const first = keys.next(resolved.key);
    const again = keys.next(resolved.key);
    assert.equal(again.derived, first.derived, 'reused while the DEK is held');
    assert.notDeepEqual(again.prefix, first.prefix);
    assert.ok(first.derived.key.some((b) => b !== 0));
    // Disabling the scope's key management invalidates its keys in L1.
    await ledger.admin.disableKeyManagement(CUST, NS);
    assert.ok(
      first.derived.key.every((b) => b === 0),
      'K zeroed with its DEK',
    );
    assert.ok(first.derived.commitment.every((b) => b === 0));
    assert.throws(() => keys.next(resolved.key), TypeError, 'a DEK that left L1 is never used');
    // Back on: a new CachedKey, a new derived key under a new salt, still the format.
    await ledger.admin.enableKeyManagement(CUST, NS);
    const streams = new EnvelopeStreams(ledger.resolver, { streamsPerDerivedKey: 100 });
    const ct = (await streams.encryptBuffer(Buffer.from('after'), TARGET)).ciphertext;
    assert.notEqual(ct.toString('hex', L.salt, L.salt + 32), first.derived.salt.toString('hex'));
    assert.deepEqual(openStream(dek, ct), Buffer.from('after'));
    const held = keys.next(
      (await ledger.resolver.resolveActive(ledger.resolver.target(CUST, [NS])))?.key ?? assert.fail(),
    );
    keys.close();
    assert.ok(
      held.derived.key.every((b) => b === 0),
      'close() zeroes what is held',
    );
    streams.close();
  });

  it('the ledger closing (L1 cleared) zeroes the derived keys', async () => {
    const { ledger } = await setup();
    const keys = new StreamEncryptKeys(ledger.resolver);
    const resolved = await ledger.resolver.resolveActive(ledger.resolver.target(CUST, [NS]));
    assert.ok(resolved !== null);
    const held = keys.next(resolved.key);
    await ledger.close();
    opened.splice(opened.indexOf(ledger), 1);
    assert.ok(held.derived.key.every((b) => b === 0));
  });

  it('the encrypt operation on a whole buffer (the HTTP JSON form) reuses one derived key per ledger', async () => {
    const { ledger, dek } = await setup();
    const host = ledgerHost(ledger);
    const prepared = encrypt.prepare({ custodian: CUST, namespace: [NS] });
    const cts: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const parts: Buffer[] = [];
      const output = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          parts.push(chunk);
          callback();
        },
      });
      await encrypt.run(prepared, host, { input: Buffer.from(`message ${i}`), output });
      cts.push(Buffer.concat(parts));
    }
    assert.equal(new Set(cts.map(saltOf)).size, 1, 'one derived key');
    assert.equal(new Set(cts.map(prefixOf)).size, 5);
    for (const [i, ct] of cts.entries()) assert.deepEqual(openStream(dek, ct), Buffer.from(`message ${i}`));
  });

  it('refuses a budget outside 1 … 2^32 - 1 (the prefix counter is 32 bits)', async () => {
    const { ledger } = await setup();
    for (const bad of [0, -1, 1.5, 2 ** 32, Number.NaN]) {
      assert.throws(() => new StreamEncryptKeys(ledger.resolver, bad), TypeError, String(bad));
      assert.throws(() => new EnvelopeStreams(ledger.resolver, { streamsPerDerivedKey: bad }), TypeError);
    }
  });
});
