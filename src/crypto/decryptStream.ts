import { ChunkedDuplex } from './chunkedDuplex.js';
import { DecryptionFailedError } from './decryptionFailedError.js';
import { zeroDerived } from './derivedKey.js';
import { NONCE_BYTES, STREAM_HEADER_BYTES, STREAM_MAX_CHUNKS, TAG_BYTES } from './envelopeFormat.js';
import type { DecryptionKeyInfo, ScopeCheck } from './expectedScope.js';
import type { KeySource } from './keySource.js';
import {
  AuthorizeRefusal,
  type OpenedStreamHeader,
  openStreamChunk,
  openStreamHeader,
} from './streamHeaderOpener.js';

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
  /** The opened header (K and what each chunk needs); null until it opened, and after cleanup. */
  #opened: OpenedStreamHeader | null = null;
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
    if (this.#opened === null) {
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
    if (this.#opened === null || this.#filled < TAG_BYTES) throw new DecryptionFailedError();
    this.#open((this.#record as Buffer).subarray(0, this.#filled), true);
  }

  protected cleanup(): void {
    if (this.#opened !== null) zeroDerived(this.#opened.derived);
    this.#opened = null;
    this.#record = null;
    this.#filled = 0;
  }

  protected failure(): Error {
    return this.#refusal ?? new DecryptionFailedError();
  }

  /** The header is complete: open it (streamHeaderOpener.ts, the checks decryptBuffer makes too). */
  async #start(): Promise<void> {
    let opened: OpenedStreamHeader;
    try {
      opened = await openStreamHeader(
        this.#keys,
        this.#header,
        this.#callerAad,
        this.#expected,
        this.#authorize,
        () => this.destroyed,
      );
    } catch (error) {
      if (!(error instanceof AuthorizeRefusal)) throw error;
      this.#refusal = error.error instanceof Error ? error.error : new Error(String(error.error));
      throw this.#refusal;
    }
    // Destroyed while the header opened: cleanup() has run and would not see K.
    if (this.destroyed) {
      zeroDerived(opened.derived);
      throw new DecryptionFailedError();
    }
    this.#opened = opened;
    this.#recordSize = opened.chunkSize + TAG_BYTES;
    this.keyInfo = opened.keyInfo;
    this.emit('key', this.keyInfo);
  }

  /** Opens one chunk; its plaintext is pushed only once the tag verified. */
  #open(record: Buffer, final: boolean): void {
    const opened = this.#opened;
    if (opened === null) throw new DecryptionFailedError();
    if (this.#index >= (final ? STREAM_MAX_CHUNKS : STREAM_MAX_CHUNKS - 1)) throw new DecryptionFailedError();
    const body = openStreamChunk(opened, this.#nonce, this.#index, final, record);
    this.#index++;
    this.output(body);
  }
}
