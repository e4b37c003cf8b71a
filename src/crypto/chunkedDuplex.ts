import { Duplex } from 'node:stream';

/** An empty buffer: no input held, no AAD given. */
export const EMPTY = Buffer.alloc(0);

/**
 * Input arrives in pieces of any size; `consume` takes what it can of one piece and may push
 * output. A write is acknowledged only once its piece is consumed and the readable side has room,
 * so a slow reader holds the writer back and nothing piles up.
 */
export abstract class ChunkedDuplex extends Duplex {
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
