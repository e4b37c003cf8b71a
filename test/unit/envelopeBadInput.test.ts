import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import * as format from '../../src/crypto/envelopeFormat.js';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { derive, LAYOUT, parse, seal } from '../helpers/envelopeFixtures.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * Bad input never surfaces as anything but DecryptionFailedError (issue 4, "Bad input"). One
 * ledger serves every property; its DEKs come from a ScriptedProvider, so the test can also forge
 * ciphertexts whose commitment and GCM tag are valid (test/helpers/envelopeFixtures.ts) and check
 * that the header checks alone refuse them.
 */

const RUNS = 10_000;
const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const TARGET = { custodian: CUST, namespaces: [NS] };

let ledger: Ledger;
/** The ACTIVE key of TARGET: id (bytes) and DEK. */
let active: { keyId: Buffer; dek: Uint8Array };
/** A key of scope `retired` that was DISABLED after `disabledCiphertexts` were made with it. */
let disabled: { keyId: Buffer; dek: Uint8Array };
let disabledCiphertexts: { ct: Buffer; aad: Uint8Array | undefined }[];

before(async () => {
  const scripted = new ScriptedProvider();
  ledger = await Ledger.open({
    store: new MemoryEventStore(),
    provider: scripted,
    actor: 'test',
    resolver: { dynamicLookup: false },
  });
  await ledger.initialise();
  scripted.setKey(keyScope(CUST, NS), 'k-active');
  const a = await ledger.admin.enableKeyManagement(CUST, NS);
  scripted.setKey(keyScope(CUST, 'retired'), 'k-retired');
  const d = await ledger.admin.enableKeyManagement(CUST, 'retired');
  assert.ok(a.key && d.key);
  active = { keyId: Buffer.from(a.key.keyId, 'hex'), dek: scripted.bytesOf('k-active') ?? new Uint8Array() };
  disabled = {
    keyId: Buffer.from(d.key.keyId, 'hex'),
    dek: scripted.bytesOf('k-retired') ?? new Uint8Array(),
  };
  const retired = { custodian: CUST, namespaces: ['retired'] };
  disabledCiphertexts = [];
  for (const [pt, aad] of [
    [Buffer.alloc(0), undefined],
    [Buffer.from('one'), undefined],
    [randomBytes(100), Buffer.from('aad')],
  ] as const) {
    const ct = await ledger.envelope.encrypt(pt, { ...retired, ...(aad ? { aad } : {}) });
    assert.deepEqual(
      await ledger.envelope.decrypt(ct, aad ? { aad } : {}),
      pt,
      'decrypts before it is disabled',
    );
    disabledCiphertexts.push({ ct, aad });
  }
  await ledger.admin.disableManagedKey(CUST, 'retired', d.key.metadataHash);
  // Forging works: a ciphertext sealed by hand under the ACTIVE key's DEK decrypts.
  const control = sealWith(active, { plaintext: Buffer.from('control') });
  assert.deepEqual(await ledger.envelope.decrypt(control), Buffer.from('control'));
});

after(async () => {
  await ledger?.close();
});

function sealWith(
  key: { keyId: Buffer; dek: Uint8Array },
  fields: { plaintext: Uint8Array; aad?: Uint8Array; version?: number; mode?: number; salt?: Uint8Array },
): Buffer {
  return seal({
    dek: key.dek,
    keyId: key.keyId,
    salt: fields.salt ?? randomBytes(32),
    nonce: randomBytes(12),
    plaintext: fields.plaintext,
    ...(fields.aad ? { aad: fields.aad } : {}),
    ...(fields.version === undefined ? {} : { version: fields.version }),
    ...(fields.mode === undefined ? {} : { mode: fields.mode }),
  });
}

/** Decrypting must fail with exactly the one error: never succeed, never throw anything else. */
async function mustFail(ciphertext: Uint8Array, aad?: Uint8Array): Promise<void> {
  let result: unknown;
  try {
    result = await ledger.envelope.decrypt(ciphertext, aad === undefined ? {} : { aad });
  } catch (error) {
    if (!(error instanceof DecryptionFailedError)) {
      throw new assert.AssertionError({ message: `expected DecryptionFailedError, got ${String(error)}` });
    }
    assert.equal(error.code, 'ERR_DECRYPTION_FAILED');
    return;
  }
  throw new assert.AssertionError({
    message: `decrypted to ${Buffer.from(result as Uint8Array).toString('hex')}, expected a failure`,
  });
}

async function encrypt(plaintext: Uint8Array, aad?: Uint8Array): Promise<Buffer> {
  return ledger.envelope.encrypt(plaintext, aad === undefined ? TARGET : { ...TARGET, aad });
}

function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(bytes);
  const i = bit >> 3;
  out[i] = (out[i] ?? 0) ^ (1 << (bit & 7));
  return out;
}

const plaintexts = fc.uint8Array({ maxLength: 300 });
const aads = fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined });
const property = { numRuns: RUNS };

describe('envelope bad input: every failure is a DecryptionFailedError', () => {
  it('every single-bit flip, exhaustively, of two small ciphertexts (with and without AAD)', async () => {
    for (const [pt, aad] of [
      [Buffer.from('sixteen bytes!!!'), Buffer.from('row=1')],
      [Buffer.alloc(0), undefined],
    ] as const) {
      const ct = await encrypt(pt, aad);
      assert.deepEqual(await ledger.envelope.decrypt(ct, aad ? { aad } : {}), pt);
      for (let bit = 0; bit < ct.length * 8; bit++) await mustFail(flipBit(ct, bit), aad);
    }
  });

  it('a single-bit flip anywhere in a random message (property)', async () => {
    await fc.assert(
      fc.asyncProperty(plaintexts, aads, fc.nat(), async (pt, aad, n) => {
        const ct = await encrypt(pt, aad);
        await mustFail(flipBit(ct, n % (ct.length * 8)), aad);
      }),
      property,
    );
  });

  it('every byte of the header replaced by every other value, exhaustively', async () => {
    const ct = await encrypt(Buffer.from('header'));
    for (let i = 0; i < LAYOUT.headerBytes; i++) {
      for (let v = 0; v < 256; v++) {
        if (v === ct[i]) continue;
        const bad = Buffer.from(ct);
        bad[i] = v;
        await mustFail(bad);
      }
    }
  });

  it('truncation at every length, exhaustively, from either end', async () => {
    const aad = Buffer.from('aad');
    const ct = await encrypt(randomBytes(200), aad);
    for (let length = 0; length < ct.length; length++) {
      await mustFail(ct.subarray(0, length), aad);
      await mustFail(ct.subarray(ct.length - length), aad);
    }
  });

  it('truncation of a random message at a random length (property)', async () => {
    await fc.assert(
      fc.asyncProperty(plaintexts, aads, fc.nat(), async (pt, aad, n) => {
        const ct = await encrypt(pt, aad);
        await mustFail(ct.subarray(0, n % ct.length), aad);
      }),
      property,
    );
  });

  it('bytes appended to a random message (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        plaintexts,
        aads,
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        async (pt, aad, extra) => {
          const ct = await encrypt(pt, aad);
          await mustFail(Buffer.concat([ct, extra]), aad);
        },
      ),
      property,
    );
  });

  it('a view shorter than its buffer: the bytes past the view are never read (property)', async () => {
    await fc.assert(
      fc.asyncProperty(plaintexts, fc.integer({ min: 1, max: 200 }), async (pt, cut) => {
        const ct = await encrypt(pt);
        const buffer = new Uint8Array(ct.length + 8);
        buffer.set(ct, 4);
        await mustFail(buffer.subarray(4, 4 + Math.max(0, ct.length - cut)));
      }),
      property,
    );
  });

  it('a header from a future (or zero) version: on a real message, and forged with a valid commitment and tag (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 255 }).filter((v) => v !== 1),
        plaintexts,
        aads,
        async (version, pt, aad) => {
          const ct = await encrypt(pt, aad);
          ct[LAYOUT.offsets.version] = version;
          await mustFail(ct, aad);
          // The tag covers this header and verifies under the real derived key: only the version
          // check can refuse it.
          await mustFail(sealWith(active, { plaintext: pt, version, ...(aad ? { aad } : {}) }), aad);
        },
      ),
      property,
    );
  });

  it('every future version 2..255, exhaustively, forged with a valid tag', async () => {
    for (let version = 2; version <= 255; version++) {
      await mustFail(sealWith(active, { plaintext: Buffer.from('v'), version }));
    }
  });

  it('unknown modes (0, 2 = stream, 3..255): on a real message, and forged with a valid tag (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constant(2),
          fc.integer({ min: 0, max: 255 }).filter((m) => m !== 1),
        ),
        plaintexts,
        aads,
        async (mode, pt, aad) => {
          const ct = await encrypt(pt, aad);
          ct[LAYOUT.offsets.mode] = mode;
          await mustFail(ct, aad);
          await mustFail(sealWith(active, { plaintext: pt, mode, ...(aad ? { aad } : {}) }), aad);
        },
      ),
      property,
    );
  });

  it('stream-mode headers (chunk-size claims up to 2^32-1) are refused by decrypt() (property)', async () => {
    // The message format has no length field: every field has a fixed size and the body runs to
    // the tag. The only length field of the envelope is the stream header's chunk size (mode 2,
    // u32 BE at offset 85; nonce prefix at 89; 96 header bytes). decrypt() takes messages only, so
    // a well-formed stream header — with the ACTIVE key's id and the right commitment for mode 2 —
    // claiming any chunk size, followed by anything, must fail without acting on the claim.
    const stream = { chunkSize: 85, noncePrefix: 89, headerBytes: 96 };
    const defined = format as unknown as Record<string, unknown>;
    for (const [name, value] of [
      ['STREAM_OFFSET_CHUNK_SIZE', stream.chunkSize],
      ['STREAM_OFFSET_NONCE_PREFIX', stream.noncePrefix],
      ['STREAM_HEADER_BYTES', stream.headerBytes],
    ] as const) {
      if (name in defined) assert.equal(defined[name], value, `${name} as documented`);
    }
    const claims = fc.oneof(
      fc.constantFrom(0, 1, 16, 64 * 1024, 16 * 1024 * 1024, 16 * 1024 * 1024 + 1, 2 ** 31, 2 ** 32 - 1),
      fc.nat({ max: 2 ** 32 - 1 }),
    );
    await fc.assert(
      fc.asyncProperty(claims, fc.uint8Array({ maxLength: 300 }), aads, async (chunkSize, rest, aad) => {
        const salt = randomBytes(32);
        const { commitment } = derive(active.dek, salt, active.keyId, 2);
        const head = Buffer.alloc(stream.headerBytes);
        Buffer.concat([LAYOUT.magic, Buffer.of(1, 2), active.keyId, salt, commitment]).copy(head);
        head.writeUInt32BE(chunkSize, stream.chunkSize);
        randomBytes(7).copy(head, stream.noncePrefix);
        await mustFail(Buffer.concat([head, rest]), aad);
        // The same bytes declaring mode 1 are a message with a wrong commitment and tag.
        const asMessage = Buffer.concat([head, rest]);
        asMessage[LAYOUT.offsets.mode] = 1;
        await mustFail(asMessage, aad);
      }),
      property,
    );
  });

  it('empty input: every zero-length view, with and without AAD (property)', async () => {
    await mustFail(new Uint8Array(0));
    await mustFail(Buffer.alloc(0));
    await mustFail(new Uint8Array(new ArrayBuffer(0)));
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.nat(), aads, async (bytes, at, aad) => {
        const offset = bytes.length === 0 ? 0 : at % bytes.length;
        await mustFail(bytes.subarray(offset, offset), aad);
      }),
      property,
    );
  });

  it('a ciphertext for a disabled key: its real ciphertexts, and well-formed forged ones (property)', async () => {
    for (const { ct, aad } of disabledCiphertexts) await mustFail(ct, aad);
    await fc.assert(
      fc.asyncProperty(plaintexts, aads, fc.nat(disabledCiphertexts.length - 1), async (pt, aad, i) => {
        // A perfectly valid ciphertext under the disabled key's DEK (right commitment and tag).
        await mustFail(sealWith(disabled, { plaintext: pt, ...(aad ? { aad } : {}) }), aad);
        const real = disabledCiphertexts[i];
        if (real) await mustFail(real.ct, aad ?? real.aad);
      }),
      property,
    );
  });

  it('random bytes of any length (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), aads, async (bytes, aad) => {
        await mustFail(bytes, aad);
      }),
      property,
    );
  });

  it('random bytes after a valid prefix "KLE" 01 01 (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), aads, async (rest, aad) => {
        await mustFail(Buffer.concat([LAYOUT.magic, Buffer.of(1, 1), rest]), aad);
      }),
      property,
    );
  });

  it('random bytes after a valid prefix and the ACTIVE key id (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), aads, async (rest, aad) => {
        await mustFail(Buffer.concat([LAYOUT.magic, Buffer.of(1, 1), active.keyId, rest]), aad);
      }),
      property,
    );
  });

  it('random body and tag after a real header: valid key id, salt and commitment (property)', async () => {
    const ct = await encrypt(Buffer.from('a real header'));
    const { header } = parse(ct);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 400 }), aads, async (rest, aad) => {
        await mustFail(Buffer.concat([header, rest]), aad);
      }),
      property,
    );
  });

  it('a large random input with a valid prefix fails like a small one', async () => {
    const big = randomBytes(4 * 1024 * 1024);
    Buffer.concat([LAYOUT.magic, Buffer.of(1, 1), active.keyId]).copy(big);
    await mustFail(big);
  });
});
