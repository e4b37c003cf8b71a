import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import { Envelope } from '../../src/crypto/envelope.js';
import type { ActiveResolution, CachedKey, KeySource, ResolutionTarget } from '../../src/crypto/keySource.js';
import { keyScope, parseKeyId, scopeKey } from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import {
  computeVector,
  derive,
  type EnvelopeVector,
  hkdfInfo,
  LAYOUT,
  open,
  parse,
  seal,
  VECTOR_INPUTS,
} from '../helpers/envelopeFixtures.js';

const VECTORS_FILE = new URL('../fixtures/envelope-vectors.json', import.meta.url);
const { vectors } = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as { vectors: EnvelopeVector[] };
const hex = (h: string) => Buffer.from(h, 'hex');
const CUST = Buffer.from('tenant-1').toString('base64');

/**
 * A KeySource that knows exactly one key (the vector's DEK under the vector's key id), ACTIVE for
 * every target. The vector fixes the key, so a stub is the right source: the ledger would mint
 * its own. Each call hands out a fresh CachedKey, as L1 would after a miss.
 */
class FixedKeySource implements KeySource {
  readonly #dek: Buffer;
  readonly #keyId: string;
  lookups: string[] = [];

  constructor(dekHex: string, keyIdHex: string) {
    this.#dek = hex(dekHex);
    this.#keyId = keyIdHex;
  }

  #key(): CachedKey {
    const scope = keyScope(CUST, 'vectors');
    return {
      keyId: parseKeyId(this.#keyId),
      scope,
      scopeKey: scopeKey(scope),
      state: 'ACTIVE',
      metadataHash: metadataHashOf('vectors'),
      checksum: '0000000000000000',
      key: SecretBytes.copyOf(this.#dek),
    };
  }

  #held: CachedKey | undefined;

  target(custodian: string, namespaces: readonly string[]): ResolutionTarget {
    const scope = keyScope(custodian, namespaces[0]);
    return {
      custodian: scope.custodian,
      namespaces: [scope.namespace],
      scopes: [scope],
      scopeKeys: [scopeKey(scope)],
      cacheKey: scopeKey(scope),
    };
  }

  peekActive(): ActiveResolution | null | undefined {
    return undefined;
  }

  async resolveActive(): Promise<ActiveResolution | null> {
    this.#held ??= this.#key();
    return { scope: this.#held.scope, candidate: 0, key: this.#held };
  }

  async resolveForDecrypt(keyId: string): Promise<CachedKey | null> {
    this.lookups.push(keyId);
    if (keyId !== this.#keyId) return null;
    this.#held ??= this.#key();
    return this.#held;
  }

  onKeyLeave(): () => void {
    return () => undefined;
  }
}

function envelopeFor(v: { dek: string; keyId: string }) {
  const keys = new FixedKeySource(v.dek, v.keyId);
  return { keys, envelope: new Envelope(keys) };
}

async function rejectsDecryption(call: () => Promise<unknown>): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof DecryptionFailedError, `expected DecryptionFailedError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_DECRYPTION_FAILED');
    return true;
  });
}

describe('envelope known-answer vectors', () => {
  it('the fixture holds the vectors the independent implementation computes, and the required cases', () => {
    assert.deepEqual(vectors, VECTOR_INPUTS.map(computeVector));
    const lengths = vectors.map((v) => ({ pt: v.plaintext.length / 2, aad: v.aad.length / 2 }));
    assert.ok(lengths.some((l) => l.pt === 0));
    assert.ok(lengths.some((l) => l.pt === 1));
    assert.ok(lengths.some((l) => l.pt === 100 && l.aad > 0));
  });

  it('each vector is self-consistent: layout, info strings, lengths', () => {
    for (const v of vectors) {
      const ct = hex(v.ciphertext);
      assert.equal(ct.length, LAYOUT.overhead + v.plaintext.length / 2, v.name);
      assert.equal(v.header, v.ciphertext.slice(0, 2 * LAYOUT.headerBytes), v.name);
      assert.equal(
        v.header,
        `4b4c450101${v.keyId}${v.salt}${v.nonce}${v.commitment}`,
        `${v.name}: header = "KLE" 01 01 keyId salt nonce commitment`,
      );
      assert.equal(v.keyInfo, `${Buffer.from('keyledger-v1 key\0\x01', 'latin1').toString('hex')}${v.keyId}`);
      assert.equal(
        v.commitInfo,
        `${Buffer.from('keyledger-v1 commit\0\x01', 'latin1').toString('hex')}${v.keyId}`,
      );
      assert.equal(hkdfInfo('key', 1, hex(v.keyId)).length, 34);
      assert.equal(hkdfInfo('commit', 1, hex(v.keyId)).length, 37);
      assert.deepEqual(open(hex(v.dek), ct, hex(v.aad)), hex(v.plaintext), v.name);
    }
  });

  for (const v of vectors) {
    it(`Envelope decrypts the vector "${v.name}"`, async () => {
      const { envelope, keys } = envelopeFor(v);
      const aad = v.aad === '' ? undefined : hex(v.aad);
      const plaintext = await envelope.decrypt(hex(v.ciphertext), aad === undefined ? {} : { aad });
      assert.deepEqual(plaintext, hex(v.plaintext));
      assert.deepEqual(keys.lookups, [v.keyId], 'the key is looked up by the header key id');
      // The same bytes as a plain Uint8Array, and as a view at an odd offset of a larger buffer.
      const plain = Uint8Array.from(hex(v.ciphertext));
      assert.deepEqual(await envelope.decrypt(plain, aad === undefined ? {} : { aad }), hex(v.plaintext));
      const big = new Uint8Array(plain.length + 7);
      big.set(plain, 3);
      const view = big.subarray(3, 3 + plain.length);
      assert.deepEqual(await envelope.decrypt(view, aad === undefined ? {} : { aad }), hex(v.plaintext));
      // AAD must match exactly.
      if (aad === undefined)
        await rejectsDecryption(() => envelope.decrypt(hex(v.ciphertext), { aad: hex('00') }));
      else await rejectsDecryption(() => envelope.decrypt(hex(v.ciphertext)));
    });
  }

  it('Envelope refuses a vector under another DEK with the same key id (commitment)', async () => {
    for (const v of vectors) {
      const other = Buffer.from(hex(v.dek).map((b) => b ^ 0x01));
      const { envelope } = envelopeFor({ dek: other.toString('hex'), keyId: v.keyId });
      await rejectsDecryption(() =>
        envelope.decrypt(hex(v.ciphertext), v.aad === '' ? {} : { aad: hex(v.aad) }),
      );
    }
  });

  for (const v of vectors) {
    it(`Envelope's own encryption matches the format, field by field ("${v.name}")`, async () => {
      const { envelope } = envelopeFor(v);
      const plaintext = hex(v.plaintext);
      const aad = v.aad === '' ? undefined : hex(v.aad);
      const options = { custodian: CUST, namespaces: ['vectors'], ...(aad === undefined ? {} : { aad }) };
      const first = await envelope.encrypt(plaintext, options);
      const second = await envelope.encrypt(plaintext, options);
      for (const ct of [first, second]) {
        assert.equal(ct.length, LAYOUT.overhead + plaintext.length);
        const p = parse(ct);
        assert.deepEqual(p.magic, Buffer.from('KLE', 'ascii'));
        assert.equal(p.version, 1);
        assert.equal(p.mode, 1);
        assert.equal(p.keyId.toString('hex'), v.keyId);
        // Re-derive from the salt and nonce Envelope drew, and rebuild the whole ciphertext.
        const derived = derive(hex(v.dek), p.salt, p.keyId);
        assert.deepEqual(p.commitment, derived.commitment, 'commitment = HKDF(dek, salt, commit info)');
        const rebuilt = seal({
          dek: hex(v.dek),
          keyId: p.keyId,
          salt: p.salt,
          nonce: p.nonce,
          plaintext,
          ...(aad === undefined ? {} : { aad }),
        });
        assert.deepEqual(ct, rebuilt, 'every byte as the documented format gives');
        assert.deepEqual(open(hex(v.dek), ct, aad), plaintext);
      }
      const [a, b] = [parse(first), parse(second)];
      assert.deepEqual(a.salt, b.salt, 'one derived key serves several messages');
      assert.notDeepEqual(a.nonce, b.nonce, 'a fresh random nonce for every message');
      assert.notDeepEqual(a.salt, hex(v.salt), 'the salt is random, not the vector one');
    });
  }

  it('a forged ciphertext with a correct tag but a wrong commitment is refused', async () => {
    const v = vectors[2] as EnvelopeVector;
    const { envelope } = envelopeFor(v);
    const base = {
      dek: hex(v.dek),
      keyId: hex(v.keyId),
      salt: hex(v.salt),
      nonce: hex(v.nonce),
      plaintext: hex(v.plaintext),
      aad: hex(v.aad),
    };
    // Control: the hand-built ciphertext with the right commitment decrypts.
    assert.deepEqual(await envelope.decrypt(seal(base), { aad: hex(v.aad) }), hex(v.plaintext));
    const otherDek = Buffer.alloc(32, 0x5a);
    const forged = [
      derive(otherDek, base.salt, base.keyId).commitment, // another key's commitment
      Buffer.from(hex(v.commitment)).map((b, i) => (i === 31 ? b ^ 0x80 : b)), // one bit altered
      Buffer.alloc(32), // zeros
    ];
    for (const commitment of forged) {
      const ct = seal({ ...base, commitment });
      // The GCM tag is valid for this header under the real derived key…
      assert.deepEqual(parse(ct).commitment, Buffer.from(commitment));
      assert.deepEqual(open(base.dek, ct, base.aad, 'gcm-only'), base.plaintext);
      assert.throws(() => open(base.dek, ct, base.aad), /bad commitment/);
      // …yet the commitment check refuses it.
      await rejectsDecryption(() => envelope.decrypt(ct, { aad: hex(v.aad) }));
    }
  });
});
