import { createCipheriv } from 'node:crypto';
import { KeyledgerError } from '../domain/errors.js';
import { type DerivedKey, deriveKey, zeroDerived } from './derivedKey.js';
import {
  MODE_STREAM,
  NONCE_BYTES,
  SALT_BYTES,
  STREAM_HEADER_BYTES,
  STREAM_NONCE_PREFIX_BYTES,
  STREAM_OFFSET_CHUNK_SIZE,
  STREAM_OFFSET_COMMITMENT,
  STREAM_OFFSET_NONCE_PREFIX,
  writePrefix,
  writeStreamNonce,
} from './envelopeFormat.js';
import type { CachedKey } from './keySource.js';
import { PublicRandomPool } from './publicRandomPool.js';

const RANDOM = new PublicRandomPool();

/**
 * The synchronous core of stream-format encryption (the format is described in envelopeStream.ts):
 * the header of one stream and the sealing of its chunks in order. The encrypting Duplex drives it
 * as data arrives; `EnvelopeStreams.encryptBuffer` drives it over a whole buffer without any stream
 * machinery. It keeps only the derived key K (the DEK is used once, here, before anything can
 * await) and `zero()` wipes K.
 */
export class StreamSealer {
  readonly header: Buffer;
  readonly chunkSize: number;
  readonly #maxChunks: number;
  readonly #derived: DerivedKey;
  readonly #prefix: Buffer;
  readonly #aad: Buffer;
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  #index = 0;

  constructor(key: CachedKey, callerAad: Buffer, chunkSize: number, maxChunks: number) {
    const keyId = Buffer.from(key.keyId, 'hex');
    // The salt and the nonce prefix are in the header: public, so from the pool.
    const random = RANDOM.fill(Buffer.alloc(SALT_BYTES + STREAM_NONCE_PREFIX_BYTES));
    const derived = deriveKey(key.key, random.subarray(0, SALT_BYTES), keyId, MODE_STREAM);
    const header = Buffer.alloc(STREAM_HEADER_BYTES);
    writePrefix(header, MODE_STREAM, keyId, derived.salt);
    header.set(derived.commitment, STREAM_OFFSET_COMMITMENT);
    header.writeUInt32BE(chunkSize, STREAM_OFFSET_CHUNK_SIZE);
    const prefix = random.subarray(SALT_BYTES);
    header.set(prefix, STREAM_OFFSET_NONCE_PREFIX);
    this.header = header;
    this.chunkSize = chunkSize;
    this.#maxChunks = maxChunks;
    this.#derived = derived;
    this.#prefix = prefix;
    this.#aad = callerAad.length === 0 ? header : Buffer.concat([header, callerAad]);
  }

  /** Chunk `index` sealed: ciphertext pieces then the tag, to be written in this order. */
  seal(plaintext: Buffer, final: boolean): readonly Buffer[] {
    // A non-final chunk must leave an index for the final one.
    if (this.#index >= (final ? this.#maxChunks : this.#maxChunks - 1)) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        `a stream holds at most ${this.#maxChunks} chunks of ${this.chunkSize} bytes; use a larger chunkSize`,
        { maxChunks: this.#maxChunks, chunkSize: this.chunkSize },
      );
    }
    writeStreamNonce(this.#nonce, this.#prefix, this.#index, final);
    const cipher = createCipheriv('aes-256-gcm', this.#derived.key, this.#nonce);
    cipher.setAAD(this.#aad);
    const body = cipher.update(plaintext);
    const rest = cipher.final();
    this.#index++;
    return rest.length === 0 ? [body, cipher.getAuthTag()] : [body, rest, cipher.getAuthTag()];
  }

  zero(): void {
    zeroDerived(this.#derived);
  }
}
