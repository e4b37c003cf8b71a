import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { Duplex } from 'node:stream';
import { KeyledgerError } from '../domain/errors.js';
import { DecryptionFailedError } from './decryptionFailedError.js';
import { type DerivedKey, deriveKey, zeroDerived } from './derivedKey.js';
import type { DecryptOptions, EncryptOptions } from './envelope.js';
import {
  COMMITMENT_BYTES,
  hasPrefix,
  KEY_ID_BYTES,
  MODE_STREAM,
  NONCE_BYTES,
  OFFSET_KEY_ID,
  OFFSET_SALT,
  SALT_BYTES,
  STREAM_DEFAULT_CHUNK_BYTES,
  STREAM_HEADER_BYTES,
  STREAM_MAX_CHUNK_BYTES,
  STREAM_MAX_CHUNKS,
  STREAM_MIN_CHUNK_BYTES,
  STREAM_NONCE_PREFIX_BYTES,
  STREAM_OFFSET_CHUNK_SIZE,
  STREAM_OFFSET_COMMITMENT,
  STREAM_OFFSET_NONCE_PREFIX,
  TAG_BYTES,
  writePrefix,
  writeStreamNonce,
} from './envelopeFormat.js';
import {
  type DecryptionKeyInfo,
  inExpectedScope,
  keyInfoOf,
  type ScopeCheck,
  scopeCheckOf,
} from './expectedScope.js';
import type { ResolutionTarget } from './keySource.js';
import { type KeySource, liveActiveKey, liveKeyForDecrypt } from './keySource.js';

export interface EnvelopeStreamsOptions {
  /**
   * Chunks one encrypt stream may hold, final chunk included (default and maximum 2^32: chunk
   * indices are u32 and a stream's derived key and nonce prefix must never see an index twice).
   * A stream that would need more fails with ERR_INVALID_ARGUMENT; pick a larger chunkSize.
   */
  readonly maxChunksPerStream?: number;
}

export interface StreamEncryptOptions extends EncryptOptions {
  /** Plaintext bytes per chunk, 1 to 16 MiB (default 64 KiB). Decrypt reads it from the header. */
  readonly chunkSize?: number;
}

export interface StreamDecryptOptions extends DecryptOptions {
  /**
   * Called with the custodian (base64) the header's key belongs to, before the key is used: a
   * service checks its caller may decrypt for that custodian. What it throws fails the stream as
   * is (not as ERR_DECRYPTION_FAILED): a refusal is not a bad ciphertext.
   */
  readonly authorize?: (custodian: string) => void;
}

const EMPTY = Buffer.alloc(0);

/**
 * Streaming envelope encryption (mode 2): `encryptStream` and `decryptStream` return Node duplex
 * streams (use them like Transforms, e.g. in `stream.pipeline`) that turn any amount of data into
 * the chunked stream format and back in constant memory.
 *
 * Layout (all integers big-endian; see envelopeFormat.ts and docs/formats.md):
 *
 *     header, 96 bytes
 *        0  3  magic "KLE"
 *        3  1  version 1
 *        4  1  mode 2 (stream)
 *        5 16  key id (the DEK's id in the ledger)
 *       21 32  salt: K = HKDF-SHA256(DEK, salt, "keyledger-v1 key" ‖ 0x00 ‖ 0x02 ‖ key id, 32)
 *       53 32  key commitment: HKDF-SHA256(DEK, salt, "keyledger-v1 commit" ‖ 0x00 ‖ 0x02 ‖ key id, 32)
 *       85  4  chunk size C (u32), 1 ≤ C ≤ 16 MiB; encrypt's default 65536
 *       89  7  nonce prefix P (random per stream)
 *     chunk i = 0 … n-1:  AES-256-GCM_K(nonce_i, aad, plaintext_i) = ciphertext_i ‖ tag_i (16)
 *       nonce_i = P ‖ u32(i) ‖ (0x01 if i = n-1 else 0x00)
 *       aad     = the 96 header bytes ‖ the caller's AAD (empty if none)
 *       |plaintext_i| = C for i < n-1, and 0 ≤ |plaintext_{n-1}| < C: a stream whose length is a
 *       multiple of C (0 included) ends with an empty final chunk (a lone 16-byte tag).
 *     n ≤ 2^32. Nothing follows the final chunk.
 *
 * So a reader splits the body into records of C + 16 bytes; every full record is a non-final
 * chunk and the shorter remainder at end of input (16 to C + 15 bytes) is the final chunk. This is
 * the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, CRYPTO 2015): the index in the
 * nonce detects reordering, dropping and duplication; the final flag detects truncation at a
 * chunk boundary (the last chunk read was not sealed as final) and anything appended after the
 * final chunk (the final chunk is then read with the wrong length, or as a non-final one). The
 * header is authenticated by every chunk and the commitment is checked before any chunk is opened.
 *
 * Keys: the key is resolved once, when the stream starts (encrypt: the resolver's namespace
 * fallback; decrypt: the header's key id, ACTIVE or INACTIVE). The stream derives its own key K
 * from the DEK at once (a fresh salt per encrypt stream) and keeps only K, so a DEK leaving L1 (a
 * rotation, a disable, an eviction) mid-stream does not affect a running stream; K is zeroed when
 * the stream ends, fails or is destroyed. A key DISABLED before decryption starts cannot decrypt.
 *
 * Memory: at most one chunk being assembled plus one sealed/opened chunk waiting for the reader
 * (writes are not acknowledged while the readable side is full), whatever the input's size or
 * piece sizes; large writes are processed in place without copying.
 *
 * Errors: encrypt fails with the resolver's errors (ERR_INVALID_CUSTODIAN / ERR_INVALID_NAMESPACE /
 * ERR_INVALID_ARGUMENT thrown by encryptStream itself; ERR_NO_ACTIVE_KEY as a stream error) and
 * TypeError for misuse. Decrypt fails with one DecryptionFailedError for anything wrong with the
 * input or its key, and emits nothing after it. Decrypt releases a chunk's plaintext only after
 * its tag verified, but a stream is whole only once it ends without error: a consumer that acts on
 * data before 'end' must be ready for a later failure (truncation is detected at end of input).
 */
export class EnvelopeStreams {
  readonly #keys: KeySource;
  readonly #maxChunks: number;

  constructor(keys: KeySource, options: EnvelopeStreamsOptions = {}) {
    this.#keys = keys;
    this.#maxChunks = options.maxChunksPerStream ?? STREAM_MAX_CHUNKS;
    if (!Number.isInteger(this.#maxChunks) || this.#maxChunks < 1 || this.#maxChunks > STREAM_MAX_CHUNKS) {
      throw new TypeError('maxChunksPerStream must be an integer from 1 to 2^32');
    }
  }

  /**
   * A stream that encrypts what is written to it into the stream format. Bad custodians or
   * namespaces throw here; a target without an ACTIVE key errors the stream before it reads.
   */
  encryptStream(options: StreamEncryptOptions): Duplex {
    if (typeof options?.custodian !== 'string' || !Array.isArray(options.namespaces)) {
      throw new TypeError('encryptStream needs { custodian, namespaces }');
    }
    const chunkSize = options.chunkSize ?? STREAM_DEFAULT_CHUNK_BYTES;
    if (
      !Number.isInteger(chunkSize) ||
      chunkSize < STREAM_MIN_CHUNK_BYTES ||
      chunkSize > STREAM_MAX_CHUNK_BYTES
    ) {
      throw new TypeError(`chunkSize must be an integer from ${STREAM_MIN_CHUNK_BYTES} to 16 MiB`);
    }
    const aad = copyAad(options.aad);
    const target = this.#keys.target(options.custodian, options.namespaces);
    return new EncryptStream(this.#keys, target, aad, chunkSize, this.#maxChunks);
  }

  /**
   * A stream that decrypts a stream-format ciphertext written to it. With `custodian` (and
   * `namespaces`), a ciphertext under another scope's key fails like any other (no output). Once
   * the header is verified the stream's `keyInfo` says which scope and key it is under, and it
   * emits `key` with the same object, before any plaintext.
   */
  decryptStream(options: StreamDecryptOptions = {}): DecryptStream {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('decrypt options must be an object');
    }
    if (options.authorize !== undefined && typeof options.authorize !== 'function') {
      throw new TypeError('authorize must be a function');
    }
    return new DecryptStream(this.#keys, copyAad(options.aad), scopeCheckOf(options), options.authorize);
  }
}

function copyAad(aad: Uint8Array | undefined): Buffer {
  if (aad === undefined) return EMPTY;
  if (!(aad instanceof Uint8Array)) throw new TypeError('aad must be a Uint8Array');
  return Buffer.from(aad);
}

/**
 * Input arrives in pieces of any size; `consume` takes what it can of one piece and may push
 * output. A write is acknowledged only once its piece is consumed and the readable side has room,
 * so a slow reader holds the writer back and nothing piles up.
 */
abstract class ChunkedDuplex extends Duplex {
  #input: Buffer = EMPTY;
  #offset = 0;
  #callback: ((error?: Error | null) => void) | null = null;
  #full = false;
  #waitingForRead = false;
  /** Set by `consume` when the next step is asynchronous (decrypt's key resolution). */
  protected pending: Promise<void> | null = null;

  /** Consumes bytes from `input` at `offset` (at least one) and returns how many. */
  protected abstract consume(input: Buffer, offset: number): number;
  /** End of input: emit the final chunk. */
  protected abstract finish(): void;
  /** Drops every secret the stream holds. */
  protected abstract cleanup(): void;
  /** What a failure surfaces as. */
  protected abstract failure(error: unknown): Error;

  protected output(data: Buffer): void {
    if (data.length > 0 && !this.push(data)) this.#full = true;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#input = chunk;
    this.#offset = 0;
    this.#callback = callback;
    this.#pump();
  }

  override _read(): void {
    if (!this.#waitingForRead) return;
    this.#waitingForRead = false;
    this.#full = false;
    this.#pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      this.finish();
      this.cleanup();
      this.push(null);
      callback();
    } catch (error) {
      this.cleanup();
      callback(this.failure(error));
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#input = EMPTY;
    this.#callback = null;
    this.cleanup();
    callback(error);
  }

  #pump(): void {
    for (;;) {
      if (this.destroyed) return;
      if (this.#full) {
        this.#waitingForRead = true;
        return;
      }
      if (this.#offset >= this.#input.length) {
        const callback = this.#callback;
        this.#callback = null;
        this.#input = EMPTY;
        callback?.();
        return;
      }
      try {
        this.#offset += this.consume(this.#input, this.#offset);
      } catch (error) {
        this.#fail(error);
        return;
      }
      const pending = this.pending;
      if (pending !== null) {
        this.pending = null;
        pending.then(
          () => this.#pump(),
          (error: unknown) => this.#fail(error),
        );
        return;
      }
    }
  }

  #fail(error: unknown): void {
    this.cleanup();
    const failure = this.failure(error);
    const callback = this.#callback;
    this.#callback = null;
    this.#input = EMPTY;
    if (callback !== null && !this.destroyed) callback(failure);
    else this.destroy(failure);
  }
}

class EncryptStream extends ChunkedDuplex {
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

/** A decrypting stream (EnvelopeStreams.decryptStream). */
export class DecryptStream extends ChunkedDuplex {
  readonly #keys: KeySource;
  readonly #callerAad: Buffer;
  readonly #expected: ScopeCheck | null;
  /** Which scope and key the ciphertext is under; null until the header verified. */
  keyInfo: DecryptionKeyInfo | null = null;
  readonly #header = Buffer.alloc(STREAM_HEADER_BYTES);
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  #headerFilled = 0;
  #derived: DerivedKey | null = null;
  #prefix: Buffer = EMPTY;
  #aad: Buffer = EMPTY;
  #recordSize = 0;
  #record: Buffer | null = null;
  #filled = 0;
  #index = 0;

  readonly #authorize: ((custodian: string) => void) | undefined;
  /** What the authorize hook threw: reported as is. */
  #refusal: Error | null = null;

  constructor(
    keys: KeySource,
    aad: Buffer,
    expected: ScopeCheck | null,
    authorize: ((custodian: string) => void) | undefined,
  ) {
    super();
    this.#keys = keys;
    this.#callerAad = aad;
    this.#expected = expected;
    this.#authorize = authorize;
  }

  protected consume(input: Buffer, offset: number): number {
    const available = input.length - offset;
    if (this.#derived === null) {
      const n = Math.min(STREAM_HEADER_BYTES - this.#headerFilled, available);
      input.copy(this.#header, this.#headerFilled, offset, offset + n);
      this.#headerFilled += n;
      if (this.#headerFilled === STREAM_HEADER_BYTES) this.pending = this.#start();
      return n;
    }
    const size = this.#recordSize;
    if (this.#filled === 0 && available >= size) {
      this.#open(input.subarray(offset, offset + size), false);
      return size;
    }
    this.#record ??= Buffer.alloc(size);
    const n = Math.min(size - this.#filled, available);
    input.copy(this.#record, this.#filled, offset, offset + n);
    this.#filled += n;
    if (this.#filled === size) {
      this.#filled = 0;
      this.#open(this.#record, false);
    }
    return n;
  }

  protected finish(): void {
    if (this.#derived === null || this.#filled < TAG_BYTES) throw new DecryptionFailedError();
    this.#open((this.#record as Buffer).subarray(0, this.#filled), true);
  }

  protected cleanup(): void {
    if (this.#derived !== null) zeroDerived(this.#derived);
    this.#derived = null;
    this.#record = null;
    this.#filled = 0;
  }

  protected failure(): Error {
    return this.#refusal ?? new DecryptionFailedError();
  }

  /** The header is complete: check what can be checked without the key, then resolve it. */
  async #start(): Promise<void> {
    const header = this.#header;
    if (!hasPrefix(header, MODE_STREAM)) throw new DecryptionFailedError();
    const chunkSize = header.readUInt32BE(STREAM_OFFSET_CHUNK_SIZE);
    if (chunkSize < STREAM_MIN_CHUNK_BYTES || chunkSize > STREAM_MAX_CHUNK_BYTES) {
      throw new DecryptionFailedError();
    }
    const keyId = header.subarray(OFFSET_KEY_ID, OFFSET_KEY_ID + KEY_ID_BYTES);
    const key = await liveKeyForDecrypt(this.#keys, keyId.toString('hex'));
    if (key === null || this.destroyed) throw new DecryptionFailedError();
    if (!inExpectedScope(key, this.#expected)) throw new DecryptionFailedError();
    if (this.#authorize !== undefined) {
      try {
        this.#authorize(key.scope.custodian);
      } catch (error) {
        this.#refusal = error instanceof Error ? error : new Error(String(error));
        throw this.#refusal;
      }
    }
    // Synchronous from here: the DEK is used before anything else can run, and only K is kept.
    const salt = Buffer.from(header.subarray(OFFSET_SALT, OFFSET_SALT + SALT_BYTES));
    const derived = deriveKey(key.key, salt, Buffer.from(keyId), MODE_STREAM);
    const commitment = header.subarray(STREAM_OFFSET_COMMITMENT, STREAM_OFFSET_COMMITMENT + COMMITMENT_BYTES);
    if (!timingSafeEqual(commitment, derived.commitment)) {
      zeroDerived(derived);
      throw new DecryptionFailedError();
    }
    this.#derived = derived;
    this.#recordSize = chunkSize + TAG_BYTES;
    this.#prefix = Buffer.from(
      header.subarray(STREAM_OFFSET_NONCE_PREFIX, STREAM_OFFSET_NONCE_PREFIX + STREAM_NONCE_PREFIX_BYTES),
    );
    this.#aad = this.#callerAad.length === 0 ? header : Buffer.concat([header, this.#callerAad]);
    this.keyInfo = keyInfoOf(key);
    this.emit('key', this.keyInfo);
  }

  /** Opens one chunk; its plaintext is pushed only once the tag verified. */
  #open(record: Buffer, final: boolean): void {
    const derived = this.#derived;
    if (derived === null) throw new DecryptionFailedError();
    if (this.#index >= (final ? STREAM_MAX_CHUNKS : STREAM_MAX_CHUNKS - 1)) throw new DecryptionFailedError();
    writeStreamNonce(this.#nonce, this.#prefix, this.#index, final);
    const decipher = createDecipheriv('aes-256-gcm', derived.key, this.#nonce);
    decipher.setAAD(this.#aad);
    decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
    const body = decipher.update(record.subarray(0, record.length - TAG_BYTES));
    try {
      decipher.final();
    } catch {
      body.fill(0);
      throw new DecryptionFailedError();
    }
    this.#index++;
    this.output(body);
  }
}
