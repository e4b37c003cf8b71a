import { ChunkedDuplex, EMPTY } from './chunkedDuplex.js';
import { type KeySource, type ResolutionTarget, withActiveKey } from './keySource.js';
import { StreamSealer } from './streamSealer.js';

/** An encrypting stream (EnvelopeStreams.encryptStream; the format is described there). */
export class EncryptStream extends ChunkedDuplex {
  readonly #keys: KeySource;
  readonly #target: ResolutionTarget;
  readonly #callerAad: Buffer;
  readonly #chunkSize: number;
  readonly #maxChunks: number;
  #sealer: StreamSealer | null = null;
  #headerSent = false;
  #chunk: Buffer | null = null;
  #filled = 0;

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
    // The DEK is used in the turn it is found held, and only K is kept.
    const sealer = await withActiveKey(
      this.#keys,
      this.#target,
      ({ key }) => new StreamSealer(key, this.#callerAad, this.#chunkSize, this.#maxChunks),
    );
    if (this.destroyed) {
      sealer.zero();
      return;
    }
    this.#sealer = sealer;
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
    this.#sealer?.zero();
    this.#sealer = null;
    this.#chunk?.fill(0);
    this.#filled = 0;
  }

  protected failure(error: unknown): Error {
    return error instanceof Error ? error : new Error(String(error));
  }

  #sendHeader(): void {
    if (this.#headerSent) return;
    if (this.#sealer === null) throw new TypeError('the stream has no key');
    this.#headerSent = true;
    this.output(this.#sealer.header);
  }

  #seal(plaintext: Buffer, final: boolean): void {
    if (this.#sealer === null) throw new TypeError('the stream has no key');
    for (const piece of this.#sealer.seal(plaintext, final)) this.output(piece);
  }
}
