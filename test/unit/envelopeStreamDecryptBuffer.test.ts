import assert from 'node:assert/strict';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import { EnvelopeStreams, type StreamDecryptOptions } from '../../src/crypto/envelopeStream.js';
import { KeyledgerError } from '../../src/domain/errors.js';
import { keyScope } from '../../src/domain/identities.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { decrypt } from '../../src/operations/cryptoOperations.js';
import { ledgerHost, openScriptedLedger } from '../helpers/scriptedLedger.js';

/**
 * `EnvelopeStreams.decryptBuffer`: a whole stream-format ciphertext opened at once (the HTTP API's
 * JSON form). It must accept exactly what the stream decrypt accepts and refuse everything else with
 * the one uniform ERR_DECRYPTION_FAILED: every bit of the header, of each chunk's body and tag,
 * every truncation, anything appended, chunks reordered, the wrong AAD, scope or key.
 */
const CUST = Buffer.from('tenant-1').toString('base64');
const OTHER = Buffer.from('tenant-2').toString('base64');
const NS = 'orders';
const C = 16;
/** Layout restated by hand from docs/formats.md (not imported from src). */
const L = { header: 96, keyId: 5, salt: 21, commitment: 53, chunkSize: 85, prefix: 89, tag: 16 } as const;

const opened: Ledger[] = [];
after(async () => {
  for (const ledger of opened.splice(0)) await ledger.close();
});

async function setup() {
  const { ledger, scripted } = await openScriptedLedger([CUST, OTHER], NS);
  opened.push(ledger);
  return { ledger, scripted, streams: new EnvelopeStreams(ledger.resolver) };
}

/** What the stream decrypt makes of `ct`: the plaintext, or the error it failed with. */
async function viaStream(streams: EnvelopeStreams, ct: Buffer, options: StreamDecryptOptions = {}) {
  const decrypting = streams.decryptStream(options);
  const parts: Buffer[] = [];
  decrypting.on('data', (c: Buffer) => parts.push(c));
  decrypting.end(ct);
  await new Promise((resolve, reject) => decrypting.once('end', resolve).once('error', reject));
  return { plaintext: Buffer.concat(parts), keyInfo: decrypting.keyInfo };
}

async function refused(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) =>
      error instanceof DecryptionFailedError &&
      (error as KeyledgerError).code === 'ERR_DECRYPTION_FAILED' &&
      Object.keys((error as KeyledgerError).details).length === 0,
    what,
  );
}

describe('EnvelopeStreams.decryptBuffer (one buffer, stream format)', () => {
  it('opens what encryptBuffer makes, as the stream decrypt does, with the same key info', async () => {
    const { streams } = await setup();
    for (const n of [0, 1, C - 1, C, C + 1, 2 * C, 5 * C + 3, 70_000]) {
      for (const aad of [undefined, Buffer.from('row 9')]) {
        const pt = randomBytes(n);
        const options = { custodian: CUST, namespaces: [NS], chunkSize: C, ...(aad ? { aad } : {}) };
        const { ciphertext } = await streams.encryptBuffer(pt, options);
        const got = await streams.decryptBuffer(ciphertext, aad ? { aad } : {});
        assert.deepEqual(got.plaintext, pt, `n=${n}`);
        const streamed = await viaStream(streams, ciphertext, aad ? { aad } : {});
        assert.deepEqual(got.keyInfo, streamed.keyInfo);
        assert.deepEqual(
          await streams.decryptBuffer(ciphertext, {
            custodian: CUST,
            namespaces: [NS],
            ...(aad ? { aad } : {}),
          }),
          got,
        );
      }
    }
  });

  it('every single-bit change anywhere (header fields, bodies, tags) is ERR_DECRYPTION_FAILED', async () => {
    const { streams } = await setup();
    const pt = randomBytes(2 * C + 7);
    const { ciphertext } = await streams.encryptBuffer(pt, {
      custodian: CUST,
      namespaces: [NS],
      chunkSize: C,
    });
    const part = (i: number): string => {
      if (i < 3) return 'magic';
      if (i === 3) return 'version';
      if (i === 4) return 'mode';
      if (i < L.salt) return 'key id';
      if (i < L.commitment) return 'salt';
      if (i < L.chunkSize) return 'commitment';
      if (i < L.prefix) return 'chunk size';
      if (i < L.header) return 'nonce prefix';
      const at = (i - L.header) % (C + L.tag);
      return at < C && i < ciphertext.length - L.tag ? 'body' : 'tag';
    };
    const seen = new Set<string>();
    for (let i = 0; i < ciphertext.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(ciphertext);
        bad[i] = (bad[i] as number) ^ bit;
        seen.add(part(i));
        await refused(streams.decryptBuffer(bad), `byte ${i} (${part(i)}) ^ ${bit}`);
      }
    }
    assert.deepEqual([...seen].sort(), [
      'body',
      'chunk size',
      'commitment',
      'key id',
      'magic',
      'mode',
      'nonce prefix',
      'salt',
      'tag',
      'version',
    ]);
    assert.deepEqual((await streams.decryptBuffer(ciphertext)).plaintext, pt, 'the original still opens');
  });

  it('a forged stream with correct tags but a wrong commitment is refused (the commitment is checked)', async () => {
    const { scripted, streams } = await setup();
    const dek = scripted.bytesOf('k1');
    assert.ok(dek !== undefined);
    const { ciphertext } = await streams.encryptBuffer(Buffer.from('forged'), {
      custodian: CUST,
      namespaces: [NS],
    });
    // Sealed under the right K with the given header as AAD, as the format says.
    const sealWith = (header: Buffer) => {
      const keyId = header.subarray(L.keyId, L.keyId + 16);
      const info = Buffer.concat([Buffer.from('keyledger-v1 key'), Buffer.of(0, 2), keyId]);
      const key = Buffer.from(hkdfSync('sha256', dek, header.subarray(L.salt, L.salt + 32), info, 32));
      const nonce = Buffer.concat([header.subarray(L.prefix, L.header), Buffer.of(0, 0, 0, 0, 1)]);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(header);
      return Buffer.concat([
        header,
        cipher.update(Buffer.from('forged')),
        cipher.final(),
        cipher.getAuthTag(),
      ]);
    };
    const honest = Buffer.from(ciphertext.subarray(0, L.header));
    // The construction is sound: with the honest header it is what encryptBuffer made, byte for byte.
    assert.deepEqual(sealWith(honest), ciphertext);
    const edited = Buffer.from(honest);
    edited[L.commitment] = (edited[L.commitment] as number) ^ 1;
    const forged = sealWith(edited);
    await refused(streams.decryptBuffer(forged), 'wrong commitment, right tag');
  });

  it('every truncation, anything appended, and reordered or repeated chunks are ERR_DECRYPTION_FAILED', async () => {
    const { streams } = await setup();
    const pt = randomBytes(3 * C + 5);
    const { ciphertext: ct } = await streams.encryptBuffer(pt, {
      custodian: CUST,
      namespaces: [NS],
      chunkSize: C,
    });
    for (let n = 0; n < ct.length; n++)
      await refused(streams.decryptBuffer(ct.subarray(0, n)), `first ${n} bytes`);
    const record = (i: number) => ct.subarray(L.header + i * (C + L.tag), L.header + (i + 1) * (C + L.tag));
    const header = ct.subarray(0, L.header);
    const final = ct.subarray(L.header + 3 * (C + L.tag));
    const variants: Record<string, Buffer> = {
      'one byte appended': Buffer.concat([ct, Buffer.of(0)]),
      'a tag appended': Buffer.concat([ct, Buffer.alloc(L.tag)]),
      'the final chunk twice': Buffer.concat([ct, final]),
      'chunks 0 and 1 swapped': Buffer.concat([header, record(1), record(0), record(2), final]),
      'chunk 1 dropped': Buffer.concat([header, record(0), record(2), final]),
      'chunk 0 repeated': Buffer.concat([header, record(0), record(0), record(1), record(2), final]),
      'the final chunk dropped (a non-final one last)': Buffer.concat([
        header,
        record(0),
        record(1),
        record(2),
      ]),
      'the header alone': Buffer.from(header),
      'a message-format header': Buffer.concat([Buffer.from([0x4b, 0x4c, 0x45, 1, 1]), ct.subarray(5)]),
    };
    for (const [what, bad] of Object.entries(variants)) await refused(streams.decryptBuffer(bad), what);
  });

  it('the wrong AAD, scope or an unknown or disabled key are the same error', async () => {
    const { ledger, scripted, streams } = await setup();
    const pt = randomBytes(40);
    const aad = Buffer.from('row 1');
    const { ciphertext } = await streams.encryptBuffer(pt, { custodian: CUST, namespaces: [NS], aad });
    await refused(streams.decryptBuffer(ciphertext), 'AAD missing');
    await refused(streams.decryptBuffer(ciphertext, { aad: Buffer.from('row 2') }), 'other AAD');
    await refused(streams.decryptBuffer(ciphertext, { aad, custodian: OTHER }), 'another custodian expected');
    await refused(
      streams.decryptBuffer(ciphertext, { aad, custodian: CUST, namespaces: ['elsewhere'] }),
      'another namespace expected',
    );
    const unknown = Buffer.from(ciphertext);
    randomBytes(16).copy(unknown, L.keyId);
    await refused(streams.decryptBuffer(unknown, { aad }), 'unknown key id');
    // Rotated away (INACTIVE) it still decrypts; DISABLED it does not.
    const [k1] = await ledger.admin.getManagedKeys(CUST, NS);
    scripted.setKey(keyScope(CUST, NS), 'k3');
    await ledger.admin.rotateManagedKey(CUST, NS);
    assert.deepEqual((await streams.decryptBuffer(ciphertext, { aad })).plaintext, pt);
    await ledger.admin.disableManagedKey(CUST, NS, k1?.metadataHash ?? '');
    await refused(streams.decryptBuffer(ciphertext, { aad }), 'key disabled');
  });

  it("the authorize hook sees the header's custodian before the key is used; its refusal comes out as is", async () => {
    const { streams } = await setup();
    const { ciphertext } = await streams.encryptBuffer(randomBytes(10), {
      custodian: OTHER,
      namespaces: [NS],
    });
    const asked: string[] = [];
    const refusal = new KeyledgerError('ERR_FORBIDDEN', 'not yours', {
      principal: 'p',
      permission: 'decrypt',
      custodian: OTHER,
    });
    await assert.rejects(
      streams.decryptBuffer(ciphertext, {
        authorize: (custodian) => {
          asked.push(custodian);
          throw refusal;
        },
      }),
      (error: unknown) => error === refusal,
    );
    assert.deepEqual(asked, [OTHER]);
    // A tampered ciphertext is refused before the hook is asked only if its header fails the
    // checks that need no key; a bad body is found after it allowed.
    const bad = Buffer.from(ciphertext);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    await refused(streams.decryptBuffer(bad, { authorize: () => {} }), 'tampered tag, allowed caller');
  });

  it('the decrypt operation on a whole buffer (the HTTP JSON form): refused with nothing written', async () => {
    const { ledger, streams } = await setup();
    const pt = randomBytes(3 * C);
    const { ciphertext } = await streams.encryptBuffer(pt, {
      custodian: CUST,
      namespaces: [NS],
      chunkSize: C,
    });
    const host = ledgerHost(ledger);
    const run = async (input: Buffer) => {
      const parts: Buffer[] = [];
      const output = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          parts.push(chunk);
          callback();
        },
      });
      const result = await decrypt
        .run(decrypt.prepare({}), host, { input, output })
        .finally(() => assert.ok(parts.length === 0 || Buffer.concat(parts).equals(pt)));
      return { result, written: Buffer.concat(parts) };
    };
    const ok = await run(ciphertext);
    assert.deepEqual(ok.written, pt);
    assert.equal(ok.result?.custodian, CUST);
    for (const at of [0, L.salt, L.prefix, L.header, L.header + C, ciphertext.length - 1]) {
      const bad = Buffer.from(ciphertext);
      bad[at] = (bad[at] as number) ^ 1;
      const parts: Buffer[] = [];
      const output = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          parts.push(chunk);
          callback();
        },
      });
      await refused(decrypt.run(decrypt.prepare({}), host, { input: bad, output }), `byte ${at}`);
      assert.equal(Buffer.concat(parts).length, 0, `nothing written for byte ${at}`);
    }
    await refused(
      decrypt.run(decrypt.prepare({}), host, {
        input: ciphertext.subarray(0, ciphertext.length - L.tag - 1),
        output: new Writable({ write: (_c, _e, cb) => cb() }),
      }),
      'truncated',
    );
  });
});
