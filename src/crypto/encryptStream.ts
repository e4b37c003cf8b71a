import { createCipheriv, randomBytes } from 'node:crypto';
import { KeyledgerError } from '../domain/errors.js';
import { ChunkedDuplex, EMPTY } from './chunkedDuplex.js';
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
import { type KeySource, liveActiveKey, type ResolutionTarget } from './keySource.js';

/** An encrypting stream (EnvelopeStreams.encryptStream; the format is described there). */
export class EncryptStream extends ChunkedDuplex {
  readonly #keys: KeySource;
  readonly #target: ResolutionTarget;
  readonly #callerAad: Buffer;
  readonly #chunkSize: number;
  readonly #maxChunks: number;
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  #derived: DerivedKey | null = null;
  #header: Buffer | null = null;
  #prefix: Buffer = EMPTY;
  #headerSent = false;
  #aad: Buffer = EMPTY;
  #chunk: Buffer | null = null;
  #filled = 0;
  #index = 0;

  constructor(keys: KeySource, target: ResolutionTarget, aad: Buffer, chunkSize: number, maxChunks: number) {
    super();
    this.#keys = keys;
    this.#target = target;
    this.#callerAad = aad;
    this.#chunkSize = chunkSize;
    this.#maxChunks = maxChunks;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.#start().then(
      () => callback(),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  }

  async #start(): Promise<void> {
    const { key } = await liveActiveKey(this.#keys, this.#target);
    // Synchronous from here: the DEK is used before anything else can run, and only K is kept.
    const keyId = Buffer.from(key.keyId, 'hex');
    const derived = deriveKey(key.key, randomBytes(SALT_BYTES), keyId, MODE_STREAM);
    if (this.destroyed) {
      zeroDerived(derived);
      return;
    }
    const header = Buffer.alloc(STREAM_HEADER_BYTES);
    writePrefix(header, MODE_STREAM, keyId, derived.salt);
    header.set(derived.commitment, STREAM_OFFSET_COMMITMENT);
    header.writeUInt32BE(this.#chunkSize, STREAM_OFFSET_CHUNK_SIZE);
    const prefix = randomBytes(STREAM_NONCE_PREFIX_BYTES);
    header.set(prefix, STREAM_OFFSET_NONCE_PREFIX);
    this.#prefix = prefix;
    this.#derived = derived;
    this.#header = header;
    this.#aad = this.#callerAad.length === 0 ? header : Buffer.concat([header, this.#callerAad]);
  }

  protected consume(input: Buffer, offset: number): number {
    this.#sendHeader();
    const size = this.#chunkSize;
    const available = input.length - offset;
    if (this.#filled === 0 && available >= size) {
      this.#seal(input.subarray(offset, offset + size), false);
      return size;
    }
    this.#chunk ??= Buffer.alloc(size);
    const n = Math.min(size - this.#filled, available);
    input.copy(this.#chunk, this.#filled, offset, offset + n);
    this.#filled += n;
    if (this.#filled === size) {
      this.#filled = 0;
      this.#seal(this.#chunk, false);
    }
    return n;
  }

  protected finish(): void {
    this.#sendHeader();
    this.#seal(this.#chunk === null ? EMPTY : this.#chunk.subarray(0, this.#filled), true);
  }

  protected cleanup(): void {
    if (this.#derived !== null) zeroDerived(this.#derived);
    this.#derived = null;
    this.#chunk?.fill(0);
    this.#filled = 0;
  }

  protected failure(error: unknown): Error {
    return error instanceof Error ? error : new Error(String(error));
  }

  #sendHeader(): void {
    if (this.#headerSent) return;
    if (this.#header === null) throw new TypeError('the stream has no key');
    this.#headerSent = true;
    this.output(this.#header);
  }

  #seal(plaintext: Buffer, final: boolean): void {
    const derived = this.#derived;
    if (derived === null) throw new TypeError('the stream has no key');
    // A non-final chunk must leave an index for the final one.
    if (this.#index >= (final ? this.#maxChunks : this.#maxChunks - 1)) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        `a stream holds at most ${this.#maxChunks} chunks of ${this.#chunkSize} bytes; use a larger chunkSize`,
        { maxChunks: this.#maxChunks, chunkSize: this.#chunkSize },
      );
    }
    writeStreamNonce(this.#nonce, this.#prefix, this.#index, final);
    const cipher = createCipheriv('aes-256-gcm', derived.key, this.#nonce);
    cipher.setAAD(this.#aad);
    const body = cipher.update(plaintext);
    const rest = cipher.final();
    this.#index++;
    this.output(body);
    this.output(rest);
    this.output(cipher.getAuthTag());
  }
}
