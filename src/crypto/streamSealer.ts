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
import type { StreamEncryptKeys } from './streamEncryptKeys.js';

const RANDOM = new PublicRandomPool();

/**
 * The synchronous core of stream-format encryption (the format is described in envelopeStream.ts):
 * the header of one stream and the sealing of its chunks in order. The encrypting Duplex drives it
 * as data arrives; `EnvelopeStreams.encryptBuffer` drives it over a whole buffer without any stream
 * machinery. Either it derives its own key K from the DEK (a fresh salt and a random nonce prefix:
 * the DEK is used once, here, before anything can await; `zero()` wipes K), or it seals under a K
 * reused from a StreamEncryptKeys, which owns (and zeroes) that K and hands out the nonce prefix.
 */
export class StreamSealer {
  readonly header: Buffer;
  readonly chunkSize: number;
  readonly #maxChunks: number;
  readonly #derived: DerivedKey;
  /** Whether K is this sealer's own (zeroed by `zero()`) or a StreamEncryptKeys' (left to it). */
  readonly #ownsKey: boolean;
  readonly #prefix: Buffer;
  readonly #aad: Buffer;
  // Every byte is written (writeStreamNonce) before each use.
  readonly #nonce = Buffer.allocUnsafe(NONCE_BYTES);
  #index = 0;

  constructor(
    key: CachedKey,
    callerAad: Buffer,
    chunkSize: number,
    maxChunks: number,
    reuse: StreamEncryptKeys | null = null,
  ) {
    let keyId: Buffer;
    let derived: DerivedKey;
    let prefix: Buffer;
    if (reuse === null) {
      keyId = Buffer.from(key.keyId, 'hex');
      // The salt and the nonce prefix are in the header: public, so from the pool.
      const random = RANDOM.fill(Buffer.allocUnsafe(SALT_BYTES + STREAM_NONCE_PREFIX_BYTES));
      derived = deriveKey(key.key, random.subarray(0, SALT_BYTES), keyId, MODE_STREAM);
      prefix = random.subarray(SALT_BYTES);
    } else {
      ({ keyId, derived, prefix } = reuse.next(key));
    }
    // Every byte is written below (the fields cover the 96 bytes).
    const header = Buffer.allocUnsafe(STREAM_HEADER_BYTES);
    writePrefix(header, MODE_STREAM, keyId, derived.salt);
    header.set(derived.commitment, STREAM_OFFSET_COMMITMENT);
    header.writeUInt32BE(chunkSize, STREAM_OFFSET_CHUNK_SIZE);
    header.set(prefix, STREAM_OFFSET_NONCE_PREFIX);
    this.header = header;
    this.chunkSize = chunkSize;
    this.#maxChunks = maxChunks;
    this.#derived = derived;
    this.#ownsKey = reuse === null;
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

  /** Wipes K if it is this sealer's own; a reused K stays with its StreamEncryptKeys. */
  zero(): void {
    if (this.#ownsKey) zeroDerived(this.#derived);
  }
}
