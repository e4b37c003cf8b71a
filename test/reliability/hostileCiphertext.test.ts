import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import { EnvelopeStreams } from '../../src/crypto/envelopeStream.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import { scaled, scaledTimeout } from './reliabilityScale.js';

/**
 * Hostile ciphertexts and streams (issue 15, part 4): every truncation, bit flip or splice of a
 * message or a stream ends in the one uniform ERR_DECRYPTION_FAILED (no details, no cause) or in the
 * original plaintext; and a stream header whose chunk-size field was edited costs no more memory than
 * the bytes that actually arrived before the first tag fails.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const TARGET = { custodian: CUST, namespaces: [NS] };
const HEADER = 96;
const CHUNK_SIZE_OFFSET = 85;
const MiB = 1024 * 1024;

function isUniformFailure(error: unknown): void {
  assert.ok(error instanceof DecryptionFailedError, `expected DecryptionFailedError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_DECRYPTION_FAILED');
  assert.deepEqual(error.details, {});
  assert.equal(error.cause, undefined);
}

function* piecesOf(data: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

async function through(
  stream: Duplex,
  input: Buffer,
  piece: number,
): Promise<{ out: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  let error: unknown = null;
  try {
    await pipeline(Readable.from(piecesOf(input, piece)), stream, async (source) => {
      for await (const chunk of source) out.push(chunk as Buffer);
    });
  } catch (e) {
    error = e;
  }
  return { out: Buffer.concat(out), error };
}

/** The largest size any Buffer allocation asked for while `fn` ran. */
async function largestAllocation(fn: () => Promise<void>): Promise<number> {
  const originals = {
    alloc: Buffer.alloc,
    allocUnsafe: Buffer.allocUnsafe,
    allocUnsafeSlow: Buffer.allocUnsafeSlow,
  };
  let largest = 0;
  const note = (size: number) => {
    if (size > largest) largest = size;
  };
  Buffer.alloc = ((size: number, ...rest: unknown[]) => {
    note(size);
    return (originals.alloc as (...args: unknown[]) => Buffer)(size, ...rest);
  }) as typeof Buffer.alloc;
  Buffer.allocUnsafe = ((size: number) => {
    note(size);
    return originals.allocUnsafe(size);
  }) as typeof Buffer.allocUnsafe;
  Buffer.allocUnsafeSlow = ((size: number) => {
    note(size);
    return originals.allocUnsafeSlow(size);
  }) as typeof Buffer.allocUnsafeSlow;
  try {
    await fn();
  } finally {
    Object.assign(Buffer, originals);
  }
  return largest;
}

describe('reliability: hostile ciphertexts and streams', () => {
  let ledger: Ledger;
  let streams: EnvelopeStreams;
  const tried = { messages: 0, streams: 0 };

  before(async () => {
    ledger = await Ledger.open({
      store: new MemoryEventStore(),
      provider: new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() }),
      actor: 'test',
      resolver: { dynamicLookup: false },
    });
    await ledger.initialise();
    await ledger.admin.enableKeyManagement(CUST, NS);
    streams = new EnvelopeStreams(ledger.resolver);
  });

  after(async () => {
    await ledger.close();
    console.log(`hostile ciphertexts: ${tried.messages} messages, ${tried.streams} streams tried, 0 crashes`);
  });

  async function encryptStream(plaintext: Buffer, chunkSize: number): Promise<Buffer> {
    const { out, error } = await through(streams.encryptStream({ ...TARGET, chunkSize }), plaintext, 4096);
    if (error !== null) throw error;
    return out;
  }

  it('an edited chunk size does not make the decryptor allocate what the header claims', async () => {
    const ct = await encryptStream(randomBytes(5000), 1024);
    for (const claimed of [16 * MiB, 8 * MiB, 1 * MiB + 3]) {
      const edited = Buffer.from(ct);
      edited.writeUInt32BE(claimed, CHUNK_SIZE_OFFSET);
      let outcome: { out: Buffer; error: unknown } = { out: Buffer.alloc(0), error: null };
      const largest = await largestAllocation(async () => {
        outcome = await through(streams.decryptStream(), edited, 512);
      });
      isUniformFailure(outcome.error);
      assert.equal(outcome.out.length, 0);
      // 5 KB arrived; the first record buffer starts at 64 KiB and grows only with the input.
      assert.ok(largest <= 128 * 1024, `claimed ${claimed}: largest allocation ${largest} bytes`);
    }
  });

  it('a large first chunk arriving in small pieces still decrypts (the growing buffer)', async () => {
    const plaintext = randomBytes(700 * 1024);
    const ct = await encryptStream(plaintext, 256 * 1024);
    for (const piece of [997, 64 * 1024, 300 * 1024]) {
      const { out, error } = await through(streams.decryptStream(), ct, piece);
      assert.equal(error, null, `piece ${piece}`);
      assert.deepEqual(out, plaintext, `piece ${piece}`);
    }
  });

  /** Truncations, byte edits and splices of `valid`. */
  function mutationsOf(valid: Buffer): fc.Arbitrary<Buffer> {
    return fc.oneof(
      fc.nat(valid.length - 1).map((n) => valid.subarray(0, n)),
      fc
        .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        })
        .map((edits) => {
          const copy = Buffer.from(valid);
          for (const [at, xor] of edits) copy[at] = (copy[at] ?? 0) ^ xor;
          return copy;
        }),
      fc
        .tuple(fc.nat(valid.length), fc.nat(valid.length), fc.uint8Array({ maxLength: 48 }))
        .map(([from, to, insert]) =>
          Buffer.concat([valid.subarray(0, Math.min(from, to)), insert, valid.subarray(Math.max(from, to))]),
        )
        .filter((spliced) => !spliced.equals(valid)),
      fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.concat([valid.subarray(0, HEADER), bytes])),
    );
  }

  it('every mutated message ends in the uniform failure', {
    timeout: scaledTimeout(60_000, 1_800_000),
  }, async () => {
    const plaintext = randomBytes(200);
    const valid = await ledger.envelope.encrypt(plaintext, TARGET);
    assert.deepEqual(await ledger.envelope.decrypt(valid), plaintext);
    await fc.assert(
      fc.asyncProperty(mutationsOf(valid), async (bytes) => {
        let error: unknown = null;
        let result: Buffer | null = null;
        try {
          result = await ledger.envelope.decrypt(bytes);
        } catch (e) {
          error = e;
        }
        // A mutation that still decrypts must have given back the plaintext (AEAD: it cannot).
        tried.messages += 1;
        if (error === null) assert.deepEqual(result, plaintext);
        else isUniformFailure(error);
      }),
      { numRuns: scaled(300, 20_000) },
    );
  });

  it('every mutated stream ends in the uniform failure, releasing only verified chunks', {
    timeout: scaledTimeout(60_000, 1_800_000),
  }, async () => {
    const chunk = 64;
    const plaintext = randomBytes(5 * chunk + 10);
    const valid = await encryptStream(plaintext, chunk);
    await fc.assert(
      fc.asyncProperty(mutationsOf(valid), fc.integer({ min: 1, max: 200 }), async (bytes, piece) => {
        const { out, error } = await through(streams.decryptStream(), bytes, piece);
        tried.streams += 1;
        if (error === null) assert.deepEqual(out, plaintext);
        else {
          isUniformFailure(error);
          assert.equal(out.length % chunk, 0, 'only whole chunks');
          assert.deepEqual(out, plaintext.subarray(0, out.length), 'only verified plaintext');
        }
      }),
      { numRuns: scaled(300, 20_000) },
    );
  });
});
