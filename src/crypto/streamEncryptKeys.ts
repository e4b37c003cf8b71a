import { type DerivedKey, deriveKey, zeroDerived } from './derivedKey.js';
import { MODE_STREAM, SALT_BYTES, STREAM_NONCE_PREFIX_BYTES } from './envelopeFormat.js';
import type { CachedKey, KeySource } from './keySource.js';
import { PublicRandomPool } from './publicRandomPool.js';

/** Streams one derived key may seal before a new salt is drawn (default). */
export const DEFAULT_STREAMS_PER_DERIVED_KEY = 2 ** 24;
/** The counter is the prefix's low 4 bytes: a derived key must never seal 2^32 streams. */
const MAX_STREAMS_PER_DERIVED_KEY = 2 ** 32 - 1;
const COUNTER_BYTES = 4;
const FIXED_PREFIX_BYTES = STREAM_NONCE_PREFIX_BYTES - COUNTER_BYTES;

const RANDOM = new PublicRandomPool();

/** What a stream sealed under a reused derived key needs: the key, its id and a fresh nonce prefix. */
export interface StreamKey {
  readonly keyId: Buffer;
  readonly derived: DerivedKey;
  readonly prefix: Buffer;
}

interface State {
  readonly keyId: Buffer;
  derived: DerivedKey;
  /** The prefix's first 3 bytes, drawn with the salt. */
  fixed: Buffer;
  /** The prefix's last 4 bytes for the next stream (u32, from a random start). */
  counter: number;
  remaining: number;
}

/**
 * Derived keys of the stream format (K and its commitment, from the DEK and a random salt) reused
 * across many one-buffer encryptions under the same DEK, as the message format's Envelope reuses
 * its own: a small message otherwise pays three HMAC-SHA256 (HKDF extract and two expands) for its
 * own K, the larger part of its cryptography (BENCHMARKS.md, service, fifth session).
 *
 * Nonces stay unique under a reused K by construction, not by chance: every stream sealed under
 * one K gets the nonce prefix `fixed ‖ u32 counter` (3 random bytes drawn with the salt, then a
 * counter from a random start), and K serves at most `streamsPerDerivedKey` (< 2^32) streams, so no
 * two of its streams share a prefix, and the chunk index and final flag keep nonces apart within a
 * stream (the STREAM construction needs only a prefix unique per key). The bytes are the documented
 * format (docs/formats.md): a reader cannot tell, and needs nothing new.
 *
 * A derived key lives exactly as long as its DEK stays in L1: it is zeroed when the DEK leaves
 * (the key source's leave listener, called before the DEK is zeroed) or when its budget is spent,
 * and by `close()`.
 */
export class StreamEncryptKeys {
  readonly #budget: number;
  readonly #states = new Map<CachedKey, State>();
  readonly #unsubscribe: () => void;

  constructor(keys: KeySource, streamsPerDerivedKey = DEFAULT_STREAMS_PER_DERIVED_KEY) {
    if (
      !Number.isInteger(streamsPerDerivedKey) ||
      streamsPerDerivedKey < 1 ||
      streamsPerDerivedKey > MAX_STREAMS_PER_DERIVED_KEY
    ) {
      throw new TypeError('streamsPerDerivedKey must be an integer from 1 to 2^32 - 1');
    }
    this.#budget = streamsPerDerivedKey;
    this.#unsubscribe = keys.onKeyLeave((key) => this.#forget(key));
  }

  /**
   * The derived key for one more stream under `key` (an L1 key, not zeroed: call it in the same
   * turn as the lookup that found it) and that stream's nonce prefix. The key stays owned here.
   */
  next(key: CachedKey): StreamKey {
    // A DEK that left L1 was forgotten here before it was zeroed: never derive from (or reuse for) it.
    if (key.key.isZeroed) throw new TypeError('SecretBytes used after zero()');
    let state = this.#states.get(key);
    if (state === undefined) {
      const keyId = Buffer.from(key.keyId, 'hex');
      state = { keyId, ...fresh(key, keyId), remaining: this.#budget };
      this.#states.set(key, state);
    } else if (state.remaining === 0) {
      zeroDerived(state.derived);
      Object.assign(state, fresh(key, state.keyId), { remaining: this.#budget });
    }
    const prefix = Buffer.allocUnsafe(STREAM_NONCE_PREFIX_BYTES);
    state.fixed.copy(prefix, 0);
    prefix.writeUInt32BE(state.counter, FIXED_PREFIX_BYTES);
    state.counter = (state.counter + 1) >>> 0;
    state.remaining--;
    return { keyId: state.keyId, derived: state.derived, prefix };
  }

  /** Zeroes every derived key and stops following the key source. */
  close(): void {
    this.#unsubscribe();
    for (const key of [...this.#states.keys()]) this.#forget(key);
  }

  #forget(key: CachedKey): void {
    const state = this.#states.get(key);
    if (state === undefined) return;
    zeroDerived(state.derived);
    this.#states.delete(key);
  }
}

/** A new salt (so a new K), a new fixed prefix part and a random counter start. */
function fresh(key: CachedKey, keyId: Buffer): Pick<State, 'derived' | 'fixed' | 'counter'> {
  const random = RANDOM.fill(Buffer.allocUnsafe(SALT_BYTES + FIXED_PREFIX_BYTES + COUNTER_BYTES));
  return {
    derived: deriveKey(key.key, random.subarray(0, SALT_BYTES), keyId, MODE_STREAM),
    fixed: random.subarray(SALT_BYTES, SALT_BYTES + FIXED_PREFIX_BYTES),
    counter: random.readUInt32BE(SALT_BYTES + FIXED_PREFIX_BYTES),
  };
}
