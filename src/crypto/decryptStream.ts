import { createDecipheriv, timingSafeEqual } from 'node:crypto';
import { ChunkedDuplex, EMPTY } from './chunkedDuplex.js';
import { DecryptionFailedError } from './decryptionFailedError.js';
import { type DerivedKey, deriveKey, zeroDerived } from './derivedKey.js';
import {
  COMMITMENT_BYTES,
  hasPrefix,
  KEY_ID_BYTES,
  MODE_STREAM,
  NONCE_BYTES,
  OFFSET_KEY_ID,
  OFFSET_SALT,
  SALT_BYTES,
  STREAM_HEADER_BYTES,
  STREAM_MAX_CHUNK_BYTES,
  STREAM_MAX_CHUNKS,
  STREAM_MIN_CHUNK_BYTES,
  STREAM_NONCE_PREFIX_BYTES,
  STREAM_OFFSET_CHUNK_SIZE,
  STREAM_OFFSET_COMMITMENT,
  STREAM_OFFSET_NONCE_PREFIX,
  TAG_BYTES,
  writeStreamNonce,
} from './envelopeFormat.js';
import { type DecryptionKeyInfo, inExpectedScope, keyInfoOf, type ScopeCheck } from './expectedScope.js';
import { type KeySource, withKeyForDecrypt } from './keySource.js';

/** The first record buffer's size before chunk 0 authenticates the header (see #reserve). */
const FIRST_RECORD_START_BYTES = 64 * 1024;

/** A decrypting stream (EnvelopeStreams.decryptStream; the format is described there). */
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
    authorize?: (custodian: string) => void,
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
    const n = Math.min(size - this.#filled, available);
    const record = this.#reserve(this.#filled + n);
    input.copy(record, this.#filled, offset, offset + n);
    this.#filled += n;
    if (this.#filled === size) {
      this.#filled = 0;
      this.#open(record, false);
    }
    return n;
  }

  /**
   * The record buffer, with room for `needed` bytes. The chunk size comes from the header, which is
   * only authenticated as the chunks' AAD: until chunk 0's tag verifies, an edited size (up to 16 MiB)
   * must not cost 16 MiB, so until then the buffer grows with the bytes that actually arrived
   * (doubling, so the copying stays linear). From chunk 1 on the size is proven and allocated at once.
   */
  #reserve(needed: number): Buffer {
    const record = this.#record;
    if (record !== null && record.length >= needed) return record;
    const capacity =
      this.#index > 0
        ? this.#recordSize
        : Math.min(this.#recordSize, Math.max(needed, 2 * (record?.length ?? 0), FIRST_RECORD_START_BYTES));
    const grown = Buffer.alloc(capacity);
    if (record !== null) record.copy(grown, 0, 0, this.#filled);
    this.#record = grown;
    return grown;
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
    await withKeyForDecrypt(this.#keys, keyId.toString('hex'), (key) => {
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
      // The DEK is used in the turn it is found held (it cannot leave L1 mid-way), and only K is kept.
      const salt = Buffer.from(header.subarray(OFFSET_SALT, OFFSET_SALT + SALT_BYTES));
      const derived = deriveKey(key.key, salt, Buffer.from(keyId), MODE_STREAM);
      const commitment = header.subarray(
        STREAM_OFFSET_COMMITMENT,
        STREAM_OFFSET_COMMITMENT + COMMITMENT_BYTES,
      );
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
    });
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
