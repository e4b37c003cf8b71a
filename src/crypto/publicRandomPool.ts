import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for values that are published (nonces, salts, nonce prefixes: they are in every
 * header), drawn from a pool the CSPRNG refills `poolBytes` at a time: one system call per pool
 * instead of one (and an allocation) per message. Each pool byte is handed out once. Never use it
 * for secrets: the pool keeps the bytes until they are handed out.
 */
export class PublicRandomPool {
  readonly #pool: Buffer;
  #at: number;

  constructor(poolBytes = 4096) {
    this.#pool = Buffer.alloc(poolBytes);
    this.#at = poolBytes;
  }

  /** Fills `target` with fresh random bytes (at most the pool's size) and answers it. */
  fill(target: Buffer): Buffer {
    const n = target.length;
    if (n > this.#pool.length) return randomFillSync(target);
    if (this.#at + n > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#at = 0;
    }
    this.#pool.copy(target, 0, this.#at, this.#at + n);
    this.#at += n;
    return target;
  }
}
