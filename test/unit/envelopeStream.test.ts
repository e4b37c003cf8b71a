import assert from 'node:assert/strict';
import { createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { type Duplex, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import { EnvelopeStreams, type StreamEncryptOptions } from '../../src/crypto/envelopeStream.js';
import { KeyledgerError } from '../../src/domain/errors.js';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { decrypt, encrypt } from '../../src/operations/cryptoOperations.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type { ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ledgerHost } from '../helpers/scriptedLedger.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const TARGET = { custodian: CUST, namespaces: [NS] };
const KiB = 1024;
const MiB = 1024 * KiB;
/** A small chunk size makes boundary cases cheap; the default (64 KiB) is covered separately. */
const C = 16;

/** Layout restated by hand from the doc comment (not imported from src). */
const L = { header: 96, keyId: 5, salt: 21, commitment: 53, chunkSize: 85, prefix: 89, tag: 16 } as const;

const opened: Ledger[] = [];

/** A real ledger on a MemoryEventStore; DEKs from a GeneratedKeyProvider over a ScriptedProvider. */
async function setup(options: { scriptedKeys?: boolean } = {}) {
  const scripted = new ScriptedProvider();
  const provider: ManagedKeyProvider = options.scriptedKeys
    ? scripted
    : new GeneratedKeyProvider({ systemKeys: scripted });
  const ledger = await Ledger.open({
    store: new MemoryEventStore(),
    provider,
    actor: 'test',
    resolver: { dynamicLookup: false },
  });
  opened.push(ledger);
  await ledger.initialise();
  return { ledger, scripted, streams: new EnvelopeStreams(ledger.resolver) };
}

after(async () => {
  for (const ledger of opened.splice(0)) await ledger.close();
});

/** `data` cut into pieces whose sizes cycle through `sizes`. */
function* piecesOf(data: Buffer, sizes: readonly number[]): Generator<Buffer> {
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const size = sizes[i % sizes.length] ?? data.length;
    yield data.subarray(offset, offset + size);
    offset += size;
  }
}

interface Outcome {
  readonly out: Buffer;
  readonly error: unknown;
}

/** Pipes `input` (in pieces) through `stream`; returns what came out and the error, if any. */
async function through(stream: Duplex, input: Buffer, sizes: readonly number[] = [input.length]) {
  const out: Buffer[] = [];
  let failed = false;
  let dataAfterError = false;
  stream.on('error', () => {
    failed = true;
  });
  stream.on('data', () => {
    if (failed) dataAfterError = true;
  });
  let error: unknown = null;
  try {
    await pipeline(Readable.from(piecesOf(input, sizes), { objectMode: false }), stream, async (source) => {
      for await (const chunk of source) out.push(chunk as Buffer);
    });
  } catch (e) {
    error = e;
  }
  assert.equal(dataAfterError, false, 'nothing is emitted after an error');
  return { out: Buffer.concat(out), error } satisfies Outcome;
}

async function ok(stream: Duplex, input: Buffer, sizes?: readonly number[]): Promise<Buffer> {
  const { out, error } = await through(stream, input, sizes);
  if (error !== null) throw error;
  return out;
}

function isDecryptionFailure(error: unknown): true {
  assert.ok(error instanceof DecryptionFailedError, `expected DecryptionFailedError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_DECRYPTION_FAILED');
  assert.deepEqual(error.details, {});
  assert.equal(error.cause, undefined);
  return true;
}

/** Ciphertext length for `n` plaintext bytes in chunks of `c`. */
const sizeFor = (n: number, c: number) => L.header + n + L.tag * (Math.floor(n / c) + 1);

/** The header and the records of a stream ciphertext. */
function split(ct: Buffer, c = C): { header: Buffer; records: Buffer[] } {
  const records: Buffer[] = [];
  for (let o = L.header; o < ct.length; o += c + L.tag) records.push(ct.subarray(o, o + c + L.tag));
  return { header: ct.subarray(0, L.header), records };
}

describe('envelope streams', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  let streams: EnvelopeStreams;
  const enc = (options: Partial<StreamEncryptOptions> = {}) =>
    streams.encryptStream({ ...TARGET, chunkSize: C, ...options });
  const dec = (aad?: Uint8Array) => streams.decryptStream(aad === undefined ? {} : { aad });
  /** Asserts that decrypting `ct` fails and released only verified whole chunks of `plaintext`. */
  async function fails(ct: Buffer, plaintext?: Buffer, aad?: Uint8Array, sizes?: readonly number[]) {
    const { out, error } = await through(dec(aad), ct, sizes);
    isDecryptionFailure(error);
    if (plaintext !== undefined) {
      assert.equal(out.length % C, 0, 'only whole chunks');
      assert.deepEqual(out, plaintext.subarray(0, out.length), 'only verified plaintext');
    } else assert.equal(out.length, 0);
    return out;
  }

  before(async () => {
    env = await setup();
    streams = env.streams;
    await env.ledger.admin.enableKeyManagement(CUST, NS);
  });

  it('round-trips 0, 1, C-1, C, C+1 and several chunks, in odd pieces, with and without AAD', async () => {
    const pieceSizes = [[1], [3, 5, 7], [C - 1, C + 1, 2 * C + 3], [1_000_000]];
    const aads = [undefined, Buffer.alloc(0), Buffer.from('table=orders;row=42')];
    for (const n of [0, 1, C - 1, C, C + 1, 2 * C, 5 * C + 3, 64 * C]) {
      const pt = randomBytes(n);
      for (const aad of aads) {
        for (const sizes of pieceSizes) {
          const ct = await ok(enc(aad === undefined ? {} : { aad }), pt, sizes);
          assert.equal(ct.length, sizeFor(n, C), `length for ${n}`);
          for (const readSizes of pieceSizes) {
            assert.deepEqual(await ok(dec(aad), ct, readSizes), pt, `n=${n} sizes=${sizes} ${readSizes}`);
          }
        }
      }
    }
  });

  it('round-trips with the default 64 KiB chunks around the boundaries', async () => {
    const chunk = 64 * KiB;
    for (const n of [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 17]) {
      const pt = randomBytes(n);
      const ct = await ok(streams.encryptStream(TARGET), pt, [1, 4093, chunk + 3, 100_000]);
      assert.equal(ct.length, sizeFor(n, chunk));
      assert.equal(ct.readUInt32BE(L.chunkSize), chunk);
      assert.deepEqual(await ok(streams.decryptStream(), ct, [chunk + 16, 7, 3 * chunk]), pt);
    }
    // Byte by byte, both ways, across a boundary.
    const pt = randomBytes(chunk + 5);
    const ct = await ok(streams.encryptStream(TARGET), pt, [1]);
    assert.deepEqual(await ok(streams.decryptStream(), ct, [1]), pt);
  });

  it('encryptBuffer makes the same format from a whole buffer: same lengths, decrypted by the stream', async () => {
    for (const n of [0, 1, C - 1, C, C + 1, 2 * C, 5 * C + 3]) {
      const pt = randomBytes(n);
      for (const aad of [undefined, Buffer.from('table=orders;row=42')]) {
        const options = { ...TARGET, chunkSize: C, ...(aad === undefined ? {} : { aad }) };
        const { ciphertext, resolution } = await streams.encryptBuffer(pt, options);
        assert.equal(ciphertext.length, sizeFor(n, C), `length for ${n}`);
        assert.equal(ciphertext.readUInt32BE(L.chunkSize), C);
        assert.equal(ciphertext.toString('hex', L.keyId, L.keyId + 16), resolution.key.keyId);
        assert.deepEqual(await ok(dec(aad), ciphertext, [7, C + 16]), pt, `n=${n}`);
      }
    }
    await assert.rejects(
      streams.encryptBuffer(randomBytes(8), { custodian: CUST, namespaces: ['nowhere'] }),
      {
        code: 'ERR_NO_ACTIVE_KEY',
      },
    );
  });

  it('writes the documented header: magic, version, mode 2, key id, fresh salt and nonce prefix', async () => {
    const pt = randomBytes(40);
    const a = await ok(enc(), pt);
    const b = await ok(enc(), pt);
    const resolved = await env.ledger.resolver.resolveActive(env.ledger.resolver.target(CUST, [NS]));
    assert.deepEqual(a.subarray(0, 5), Buffer.from([0x4b, 0x4c, 0x45, 1, 2]));
    assert.equal(a.toString('hex', L.keyId, L.keyId + 16), resolved?.key.keyId);
    assert.equal(a.readUInt32BE(L.chunkSize), C);
    assert.notDeepEqual(a.subarray(L.salt, L.salt + 32), b.subarray(L.salt, L.salt + 32));
    assert.notDeepEqual(a.subarray(L.prefix, L.header), b.subarray(L.prefix, L.header));
    assert.notDeepEqual(a.subarray(L.header), b.subarray(L.header));
  });

  it('AAD must match exactly', async () => {
    const pt = randomBytes(3 * C + 1);
    const aad = Buffer.from('row 42');
    const ct = await ok(enc({ aad }), pt);
    await fails(ct, pt, Buffer.from('row 43'));
    await fails(ct, pt);
    await fails(ct, pt, Buffer.alloc(0));
    await fails(await ok(enc(), pt), pt, aad);
    // The caller may reuse its AAD buffer once the stream is made.
    const mutable = Buffer.from('row 7');
    const stream = enc({ aad: mutable });
    mutable.fill(0);
    assert.deepEqual(await ok(dec(Buffer.from('row 7')), await ok(stream, pt)), pt);
  });

  it('truncation at every length, at chunk boundaries and mid-chunk, fails and releases only verified chunks', async () => {
    const pt = randomBytes(4 * C + 5);
    const ct = await ok(enc(), pt);
    for (let length = 0; length < ct.length; length++) {
      const out = await fails(ct.subarray(0, length), pt);
      const whole = Math.max(0, Math.floor((length - L.header) / (C + L.tag)));
      assert.ok(out.length <= whole * C);
    }
    // A stream whose length is a multiple of C: dropping its empty final chunk is detected too.
    const even = randomBytes(3 * C);
    const evenCt = await ok(enc(), even);
    await fails(evenCt.subarray(0, evenCt.length - L.tag), even);
  });

  it('reordered, duplicated, dropped and foreign chunks fail', async () => {
    const pt = randomBytes(4 * C + 5);
    const ct = await ok(enc(), pt);
    const { header, records } = split(ct);
    const [r0, r1, r2, r3, fin] = records as [Buffer, Buffer, Buffer, Buffer, Buffer];
    const cases: Buffer[][] = [
      [r1, r0, r2, r3, fin], // swapped
      [r0, r1, r3, r2, fin],
      [r0, r1, r1, r2, r3, fin], // duplicated
      [r0, r0, r1, r2, r3, fin],
      [r0, r2, r3, fin], // dropped
      [r0, r1, r2, fin],
      [r0, r1, r2, r3], // final dropped
      [fin, r0, r1, r2, r3], // final moved
      [r0, r1, r2, r3, fin, fin], // final duplicated
    ];
    for (const records of cases) await fails(Buffer.concat([header, ...records]), pt);
    // A chunk from another stream under the same key (another salt and nonce prefix).
    const other = split(await ok(enc(), pt));
    await fails(Buffer.concat([header, r0, other.records[1] as Buffer, r2, r3, fin]), pt);
    // Another stream's header over these chunks.
    await fails(Buffer.concat([other.header, ...records]), pt);
  });

  it('every flipped bit in the header, the chunks and the tags fails', async () => {
    const pt = randomBytes(2 * C + 3);
    const ct = await ok(enc({ aad: Buffer.from('x') }), pt);
    for (let bit = 0; bit < ct.length * 8; bit++) {
      const bad = Buffer.from(ct);
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      await fails(bad, pt, Buffer.from('x'));
    }
  });

  it('anything appended after the final chunk fails', async () => {
    for (const n of [0, C, 2 * C + 3]) {
      const pt = randomBytes(n);
      const ct = await ok(enc(), pt);
      const { records } = split(ct);
      const fin = records.at(-1) as Buffer;
      for (const extra of [
        Buffer.of(0),
        randomBytes(L.tag),
        randomBytes(C + L.tag),
        randomBytes(C + L.tag + 1),
        fin,
        ct,
        ct.subarray(L.header),
      ]) {
        await fails(Buffer.concat([ct, extra]), pt);
      }
    }
  });

  it('garbage, other formats, future versions and bad chunk sizes fail without a crash', async () => {
    await fails(Buffer.alloc(0));
    await fails(randomBytes(1));
    await fails(randomBytes(L.header - 1));
    await fails(randomBytes(L.header));
    await fails(randomBytes(10_000), undefined, undefined, [7, 333]);
    await fails(await env.ledger.envelope.encrypt(randomBytes(100), TARGET));
    const ct = await ok(enc(), randomBytes(C + 1));
    const patched = (offset: number, write: (b: Buffer) => void) => {
      const bad = Buffer.from(ct);
      write(bad.subarray(offset));
      return bad;
    };
    await fails(patched(3, (b) => b.writeUInt8(2)));
    await fails(patched(4, (b) => b.writeUInt8(1)));
    for (const size of [0, 16 * MiB + 1, 0xffffffff, C + 1, C - 1]) {
      await fails(patched(L.chunkSize, (b) => b.writeUInt32BE(size)));
    }
    await fails(patched(L.keyId, (b) => randomBytes(16).copy(b)));
  });

  it('random bytes, with or without a valid header in front, only ever fail (property)', async () => {
    const header = (await ok(enc(), Buffer.alloc(0))).subarray(0, L.header);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        async (bytes, withHeader, piece) => {
          const input = withHeader ? Buffer.concat([header, bytes]) : Buffer.from(bytes);
          const { error } = await through(dec(), input, [piece]);
          isDecryptionFailure(error);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('matches an independent decoder written from the documented layout', async () => {
    const own = await setup({ scriptedKeys: true });
    own.scripted.setKey(keyScope(CUST, NS), 'dek-1');
    await own.ledger.admin.enableKeyManagement(CUST, NS);
    const dek = own.scripted.bytesOf('dek-1') as Uint8Array;
    const pt = randomBytes(3 * C);
    const aad = Buffer.from('aad');
    const ct = await ok(own.streams.encryptStream({ ...TARGET, chunkSize: C, aad }), pt);
    const { header, records } = split(ct);
    const keyId = header.subarray(L.keyId, L.keyId + 16);
    const salt = header.subarray(L.salt, L.salt + 32);
    const info = (label: string) => Buffer.concat([Buffer.from(label), Buffer.of(0, 2), keyId]);
    const key = Buffer.from(hkdfSync('sha256', dek, salt, info('keyledger-v1 key'), 32));
    const commitment = Buffer.from(hkdfSync('sha256', dek, salt, info('keyledger-v1 commit'), 32));
    assert.deepEqual(header.subarray(L.commitment, L.commitment + 32), commitment);
    const parts = records.map((record, i) => {
      const nonce = Buffer.concat([header.subarray(L.prefix, L.header), Buffer.alloc(5)]);
      nonce.writeUInt32BE(i, 7);
      nonce[11] = i === records.length - 1 ? 1 : 0;
      const d = createDecipheriv('aes-256-gcm', key, nonce);
      d.setAAD(Buffer.concat([header, aad]));
      d.setAuthTag(record.subarray(record.length - 16));
      return Buffer.concat([d.update(record.subarray(0, record.length - 16)), d.final()]);
    });
    assert.equal(records.length, 4, 'three full chunks and an empty final one');
    assert.deepEqual(Buffer.concat(parts), pt);
  });

  it('refuses bad options with TypeError and bad targets with their codes, before any input', () => {
    for (const chunkSize of [0, -1, 1.5, 16 * MiB + 1, Number.NaN]) {
      assert.throws(() => enc({ chunkSize }), TypeError);
    }
    assert.throws(() => enc({ aad: 'text' as unknown as Uint8Array }), TypeError);
    assert.throws(() => streams.decryptStream({ aad: 'text' as unknown as Uint8Array }), TypeError);
    assert.throws(() => streams.encryptStream(undefined as unknown as StreamEncryptOptions), TypeError);
    assert.throws(() => new EnvelopeStreams(env.ledger.resolver, { maxChunksPerStream: 0 }), TypeError);
    assert.throws(() => enc({ custodian: 'not base64!' }), { code: 'ERR_INVALID_CUSTODIAN' });
    assert.throws(() => enc({ namespaces: ['n'.repeat(256)] }), { code: 'ERR_INVALID_NAMESPACE' });
    assert.throws(() => enc({ namespaces: [] }), { code: 'ERR_INVALID_ARGUMENT' });
  });

  it('a target without an ACTIVE key errors the stream with ERR_NO_ACTIVE_KEY', async () => {
    const { out, error } = await through(enc({ namespaces: ['never-enabled'] }), randomBytes(100));
    assert.ok(error instanceof KeyledgerError);
    assert.equal(error.code, 'ERR_NO_ACTIVE_KEY');
    assert.equal(out.length, 0);
  });

  it('refuses to encrypt more chunks than a stream may hold', async () => {
    const limited = new EnvelopeStreams(env.ledger.resolver, { maxChunksPerStream: 3 });
    const stream = () => limited.encryptStream({ ...TARGET, chunkSize: C });
    for (const n of [0, 2 * C + C - 1, 2 * C]) {
      const pt = randomBytes(n);
      assert.deepEqual(await ok(dec(), await ok(stream(), pt)), pt);
    }
    const { error } = await through(stream(), randomBytes(3 * C));
    assert.ok(error instanceof KeyledgerError);
    assert.equal(error.code, 'ERR_INVALID_ARGUMENT');
  });

  it('holds writes back while the reader is slow: one chunk in flight, whatever the write size', async () => {
    const chunk = 64 * KiB;
    const pt = randomBytes(10 * MiB);
    const stream = streams.encryptStream(TARGET);
    let written = false;
    stream.write(pt, () => {
      written = true;
    });
    stream.end();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(written, false, 'the write is not acknowledged while the output is unread');
    assert.ok(stream.readableLength <= L.header + 2 * (chunk + L.tag), `buffered ${stream.readableLength}`);
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    assert.equal(written, true);
    assert.deepEqual(await ok(streams.decryptStream(), Buffer.concat(parts)), pt);
  });

  it('a DISABLED key cannot decrypt; re-enabled (INACTIVE) it can', async () => {
    const own = await setup();
    const enabled = await own.ledger.admin.enableKeyManagement(CUST, NS);
    const hash = enabled.key?.metadataHash ?? '';
    const pt = randomBytes(5 * C);
    const ct = await ok(own.streams.encryptStream({ ...TARGET, chunkSize: C }), pt);
    await own.ledger.admin.disableManagedKey(CUST, NS, hash);
    isDecryptionFailure((await through(own.streams.decryptStream(), ct)).error);
    const { error } = await through(own.streams.encryptStream(TARGET), pt);
    assert.equal((error as KeyledgerError).code, 'ERR_NO_ACTIVE_KEY');
    await own.ledger.admin.enableManagedKey(CUST, NS, hash);
    assert.deepEqual(await ok(own.streams.decryptStream(), ct), pt);
  });

  it('a key rotation and cache eviction mid-stream do not break running streams', async () => {
    const own = await setup();
    await own.ledger.admin.enableKeyManagement(CUST, NS);
    const pt = randomBytes(40 * C + 7);
    const half = 20 * C + 3;
    const resolver = own.ledger.resolver;
    const before = await resolver.resolveActive(resolver.target(CUST, [NS]));

    // Encrypt: half written, then the key rotates and every DEK is evicted (and zeroed).
    const encrypting = own.streams.encryptStream({ ...TARGET, chunkSize: C });
    const parts: Buffer[] = [];
    encrypting.on('data', (part: Buffer) => parts.push(part));
    const ended = new Promise((resolve, reject) => {
      encrypting.on('end', resolve);
      encrypting.on('error', reject);
    });
    await new Promise<void>((resolve) => encrypting.write(pt.subarray(0, half), () => resolve()));
    await own.ledger.admin.rotateManagedKey(CUST, NS);
    await own.ledger.admin.clearManagedKeyDataCache();
    assert.equal(before?.key.key.isZeroed, true, 'the DEK the stream started with was evicted and zeroed');
    encrypting.end(pt.subarray(half));
    await ended;
    const ct = Buffer.concat(parts);
    assert.equal(ct.toString('hex', L.keyId, L.keyId + 16), before?.key.keyId, 'the key resolved at start');
    const after = await resolver.resolveActive(resolver.target(CUST, [NS]));
    assert.notEqual(after?.key.keyId, before?.key.keyId);

    // Decrypt: the same, with the header's key now INACTIVE.
    const decrypting = own.streams.decryptStream();
    const out: Buffer[] = [];
    decrypting.on('data', (part: Buffer) => out.push(part));
    const done = new Promise((resolve, reject) => {
      decrypting.on('end', resolve);
      decrypting.on('error', reject);
    });
    await new Promise<void>((resolve) => decrypting.write(ct.subarray(0, ct.length >> 1), () => resolve()));
    await own.ledger.admin.rotateManagedKey(CUST, NS);
    await own.ledger.admin.clearManagedKeyDataCache();
    decrypting.end(ct.subarray(ct.length >> 1));
    await done;
    assert.deepEqual(Buffer.concat(out), pt);
  });

  it('destroying a stream mid-way ends it quietly and frees its key', async () => {
    const stream = enc();
    stream.write(randomBytes(5 * C));
    stream.destroy();
    await new Promise((resolve) => stream.on('close', resolve));
    const decrypting = dec();
    decrypting.write((await ok(enc(), randomBytes(3 * C))).subarray(0, L.header + C));
    decrypting.destroy();
    await new Promise((resolve) => decrypting.on('close', resolve));
  });

  it('memory stays flat piping 256 MiB through encrypt → decrypt', async () => {
    const total = 256 * MiB;
    const piece = MiB + 3;
    const base = randomBytes(piece);
    const inputHash = createHash('sha256');
    const outputHash = createHash('sha256');
    function* input() {
      for (let offset = 0, i = 0; offset < total; offset += piece, i++) {
        const part = Buffer.from(base.subarray(0, Math.min(piece, total - offset)));
        part.writeUInt32BE(i, 0);
        inputHash.update(part);
        yield part;
      }
    }
    const start = process.memoryUsage().rss;
    let peak = start;
    const sample = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    let received = 0;
    try {
      await pipeline(
        Readable.from(input(), { objectMode: false, highWaterMark: 64 * KiB }),
        streams.encryptStream(TARGET),
        streams.decryptStream(),
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            outputHash.update(chunk);
            received += chunk.length;
            peak = Math.max(peak, process.memoryUsage().rss);
            callback();
          },
        }),
      );
    } finally {
      clearInterval(sample);
    }
    assert.equal(received, total);
    assert.equal(outputHash.digest('hex'), inputHash.digest('hex'));
    const growth = (peak - start) / MiB;
    console.log(
      `# 256 MiB encrypt→decrypt: rss start ${(start / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${growth.toFixed(1)} MiB`,
    );
    assert.ok(growth < 64, `rss grew by ${growth.toFixed(1)} MiB`);
  });
});

describe('encrypt and decrypt commands (in process)', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    env = await setup();
    await env.ledger.admin.enableKeyManagement(CUST, NS);
  });

  /** A stdout that collects what it is given and records whether anyone ended or destroyed it. */
  function sink(options: { isTTY?: boolean } = {}) {
    const parts: Buffer[] = [];
    const stdout = Object.assign(
      new Writable({
        highWaterMark: 1024,
        write(chunk: Buffer, _encoding, callback) {
          parts.push(chunk);
          setImmediate(callback);
        },
      }),
      options,
    );
    return { stdout, bytes: () => Buffer.concat(parts) };
  }
  const stdin = (data: Buffer) => Readable.from(piecesOf(data, [4093, 1, 70_000]), { objectMode: false });
  // The operation table's encrypt and decrypt, as the CLI runs them: prepare (checks, nothing opened), then run.
  type Io = { readonly stdin: Readable; readonly stdout: Writable };
  function encryptCommand(args: { custodian: string; namespaces: string[]; aad?: string }, io: Io) {
    const prepared = encrypt.prepare({
      custodian: args.custodian,
      namespace: args.namespaces,
      aad: args.aad,
    });
    return (ledger: Ledger) =>
      encrypt.run(prepared, ledgerHost(ledger), { input: io.stdin, output: io.stdout });
  }
  function decryptCommand(args: { aad?: string }, io: Io) {
    const prepared = decrypt.prepare(args);
    return (ledger: Ledger) =>
      decrypt.run(prepared, ledgerHost(ledger), { input: io.stdin, output: io.stdout });
  }

  it('round-trip stdin → stdout with --aad; stdout is left open', async () => {
    const data = randomBytes(300 * KiB + 5);
    const encrypted = sink();
    await encryptCommand(
      { custodian: CUST, namespaces: ['orders/cf', NS], aad: 'row 1' },
      { stdin: stdin(data), stdout: encrypted.stdout },
    )(env.ledger);
    assert.equal(encrypted.stdout.writableEnded, false);
    const ct = encrypted.bytes();
    assert.equal(ct.length, sizeFor(data.length, 64 * KiB));
    const decrypted = sink();
    await decryptCommand({ aad: 'row 1' }, { stdin: stdin(ct), stdout: decrypted.stdout })(env.ledger);
    assert.deepEqual(decrypted.bytes(), data);
    const wrong = sink();
    await assert.rejects(
      decryptCommand({ aad: 'row 2' }, { stdin: stdin(ct), stdout: wrong.stdout })(env.ledger),
      isDecryptionFailure,
    );
    assert.equal(wrong.bytes().length, 0);
    assert.equal(wrong.stdout.destroyed, false, 'stdout is not destroyed by a failure');
  });

  it('checks arguments before the ledger is opened and the key before reading input', async () => {
    const io = { stdin: stdin(Buffer.alloc(10)), stdout: sink().stdout };
    assert.throws(() => encryptCommand({ custodian: 'not base64!', namespaces: [NS] }, io), {
      code: 'ERR_INVALID_CUSTODIAN',
    });
    assert.throws(() => encryptCommand({ custodian: CUST, namespaces: ['n'.repeat(256)] }, io), {
      code: 'ERR_INVALID_NAMESPACE',
    });
    assert.throws(() => encryptCommand({ custodian: CUST, namespaces: Array(9).fill(NS) }, io), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    await assert.rejects(
      encryptCommand(
        { custodian: CUST, namespaces: [NS] },
        { ...io, stdout: sink({ isTTY: true }).stdout },
      )(env.ledger),
      { code: 'ERR_INVALID_ARGUMENT' },
    );
    let read = false;
    const untouched = new Readable({
      read() {
        read = true;
        this.push(null);
      },
    });
    await assert.rejects(
      encryptCommand(
        { custodian: CUST, namespaces: ['never-enabled'] },
        { ...io, stdin: untouched },
      )(env.ledger),
      { code: 'ERR_NO_ACTIVE_KEY' },
    );
    assert.equal(read, false, 'no input read');
  });
});
