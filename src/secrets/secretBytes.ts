import { timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[SecretBytes: redacted]';

/**
 * Holds key material. It never renders its bytes: `toString`, `toJSON` and `util.inspect` print a
 * placeholder, so a key that ends up in a log line, an error or `JSON.stringify` leaks nothing.
 * `zero()` overwrites the bytes; caches call it when an entry leaves them.
 */
export class SecretBytes {
  readonly #bytes: Uint8Array;
  #zeroed = false;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Takes ownership of `bytes`: the caller must not keep using (or zero) the array it passed. */
  static adopt(bytes: Uint8Array): SecretBytes {
    return new SecretBytes(bytes);
  }

  /** Copies `bytes`, so the caller may zero its own array afterwards. */
  static copyOf(bytes: Uint8Array): SecretBytes {
    return new SecretBytes(Uint8Array.from(bytes));
  }

  get length(): number {
    return this.#bytes.length;
  }

  get isZeroed(): boolean {
    return this.#zeroed;
  }

  /**
   * The raw bytes, for the crypto primitives that need them. The view is live: do not keep it past
   * the call that needs it, and never copy it anywhere that outlives the holder.
   */
  expose(): Uint8Array {
    if (this.#zeroed) throw new TypeError('SecretBytes used after zero()');
    return this.#bytes;
  }

  /** Constant-time comparison (lengths are not secret). */
  equals(other: SecretBytes): boolean {
    if (other.length !== this.length) return false;
    return timingSafeEqual(this.expose(), other.expose());
  }

  /** An independent copy, for a holder with its own lifetime (e.g. a cache entry). */
  clone(): SecretBytes {
    return SecretBytes.copyOf(this.expose());
  }

  zero(): void {
    this.#bytes.fill(0);
    this.#zeroed = true;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
