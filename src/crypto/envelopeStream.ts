import type { Duplex } from 'node:stream';
import { EMPTY } from './chunkedDuplex.js';
import { DecryptStream } from './decryptStream.js';
import { EncryptStream } from './encryptStream.js';
import type { DecryptOptions, EncryptOptions } from './envelope.js';
import {
  STREAM_DEFAULT_CHUNK_BYTES,
  STREAM_MAX_CHUNK_BYTES,
  STREAM_MAX_CHUNKS,
  STREAM_MIN_CHUNK_BYTES,
} from './envelopeFormat.js';
import { type DecryptionKeyInfo, type ScopeCheck, scopeCheckOf } from './expectedScope.js';
import { type ActiveResolution, type KeySource, type ResolutionTarget, withActiveKey } from './keySource.js';
import { openStreamBuffer } from './streamBufferOpener.js';
import { StreamEncryptKeys } from './streamEncryptKeys.js';
import { StreamSealer } from './streamSealer.js';

export interface EnvelopeStreamsOptions {
  /**
   * Chunks one encrypt stream may hold, final chunk included (default and maximum 2^32: chunk
   * indices are u32 and a stream's derived key and nonce prefix must never see an index twice).
   * A stream that would need more fails with ERR_INVALID_ARGUMENT; pick a larger chunkSize.
   */
  readonly maxChunksPerStream?: number;
  /**
   * `encryptBuffer` reuses a derived key across messages under the same DEK, at most this many
   * (1 to 2^32 - 1; see StreamEncryptKeys), instead of deriving one per message; `encryptStream`
   * always derives its own. Off by default: an instance that reuses follows the key source's
   * evictions, so make one per key source and `close()` it. The ciphertexts are the same format.
   */
  readonly streamsPerDerivedKey?: number;
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
 *       89  7  nonce prefix P (unique per derived key: random per stream, or a counter)
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
 * from the DEK at once (a fresh salt per encrypt stream; `encryptBuffer` may reuse one, see
 * `streamsPerDerivedKey`) and keeps only K, so a DEK leaving L1 (a
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
  readonly #reuse: StreamEncryptKeys | null;

  constructor(keys: KeySource, options: EnvelopeStreamsOptions = {}) {
    this.#keys = keys;
    this.#maxChunks = options.maxChunksPerStream ?? STREAM_MAX_CHUNKS;
    if (!Number.isInteger(this.#maxChunks) || this.#maxChunks < 1 || this.#maxChunks > STREAM_MAX_CHUNKS) {
      throw new TypeError('maxChunksPerStream must be an integer from 1 to 2^32');
    }
    this.#reuse =
      options.streamsPerDerivedKey === undefined
        ? null
        : new StreamEncryptKeys(keys, options.streamsPerDerivedKey);
  }

  /** Zeroes the derived keys kept for reuse (if any) and stops following the key source. */
  close(): void {
    this.#reuse?.close();
  }

  /**
   * A stream that encrypts what is written to it into the stream format. Bad custodians or
   * namespaces throw here; a target without an ACTIVE key errors the stream before it reads.
   */
  encryptStream(options: StreamEncryptOptions): Duplex {
    const { target, aad, chunkSize } = this.#encryptArguments(options, 'encryptStream');
    return new EncryptStream(this.#keys, target, aad, chunkSize, this.#maxChunks);
  }

  /**
   * The stream format of a whole buffer at once, byte for byte what `encryptStream` makes of it
   * (with its own nonce prefix, and its own salt unless derived keys are reused: see
   * `streamsPerDerivedKey`), without stream machinery: for input already in memory,
   * such as the HTTP API's JSON form. Answers the ciphertext and the scope and key it is under.
   */
  async encryptBuffer(
    data: Uint8Array,
    options: StreamEncryptOptions,
  ): Promise<{ readonly ciphertext: Buffer; readonly resolution: ActiveResolution }> {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    const { target, aad, chunkSize } = this.#encryptArguments(options, 'encryptBuffer');
    // The whole message is sealed in the turn the key is found held: it cannot leave L1 (and be
    // zeroed) mid-way.
    return withActiveKey(this.#keys, target, (resolution) => {
      const sealer = new StreamSealer(resolution.key, aad, chunkSize, this.#maxChunks, this.#reuse);
      try {
        const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        const pieces: Buffer[] = [sealer.header];
        const full = Math.floor(input.length / chunkSize);
        for (let i = 0; i < full; i++) {
          pieces.push(...sealer.seal(input.subarray(i * chunkSize, (i + 1) * chunkSize), false));
        }
        pieces.push(...sealer.seal(input.subarray(full * chunkSize), true));
        return { ciphertext: Buffer.concat(pieces), resolution };
      } finally {
        sealer.zero();
      }
    });
  }

  #encryptArguments(
    options: StreamEncryptOptions,
    name: string,
  ): { target: ResolutionTarget; aad: Buffer; chunkSize: number } {
    if (typeof options?.custodian !== 'string' || !Array.isArray(options.namespaces)) {
      throw new TypeError(`${name} needs { custodian, namespaces }`);
    }
    const chunkSize = options.chunkSize ?? STREAM_DEFAULT_CHUNK_BYTES;
    if (
      !Number.isInteger(chunkSize) ||
      chunkSize < STREAM_MIN_CHUNK_BYTES ||
      chunkSize > STREAM_MAX_CHUNK_BYTES
    ) {
      throw new TypeError(`chunkSize must be an integer from ${STREAM_MIN_CHUNK_BYTES} to 16 MiB`);
    }
    return {
      target: this.#keys.target(options.custodian, options.namespaces),
      aad: copyAad(options.aad),
      chunkSize,
    };
  }

  /**
   * A whole stream-format ciphertext already in memory decrypted at once, with the same checks and
   * the same one error as `decryptStream` (and `authorize`'s refusal as is), without stream
   * machinery: for input already in memory, such as the HTTP API's JSON form. The plaintext comes
   * only once every chunk verified. Answers it with the scope and key it was under.
   */
  async decryptBuffer(
    data: Uint8Array,
    options: StreamDecryptOptions = {},
  ): Promise<{ readonly plaintext: Buffer; readonly keyInfo: DecryptionKeyInfo }> {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    const { aad, expected, authorize } = this.#decryptArguments(options);
    const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return openStreamBuffer(this.#keys, input, aad, expected, authorize);
  }

  /**
   * A stream that decrypts a stream-format ciphertext written to it. With `custodian` (and
   * `namespaces`), a ciphertext under another scope's key fails like any other (no output). Once
   * the header is verified the stream's `keyInfo` says which scope and key it is under, and it
   * emits `key` with the same object, before any plaintext.
   */
  decryptStream(options: StreamDecryptOptions = {}): DecryptStream {
    const { aad, expected, authorize } = this.#decryptArguments(options);
    return new DecryptStream(this.#keys, aad, expected, authorize);
  }

  #decryptArguments(options: StreamDecryptOptions): {
    aad: Buffer;
    expected: ScopeCheck | null;
    authorize: ((custodian: string) => void) | undefined;
  } {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('decrypt options must be an object');
    }
    if (options.authorize !== undefined && typeof options.authorize !== 'function') {
      throw new TypeError('authorize must be a function');
    }
    return { aad: copyAad(options.aad), expected: scopeCheckOf(options), authorize: options.authorize };
  }
}

function copyAad(aad: Uint8Array | undefined): Buffer {
  if (aad === undefined) return EMPTY;
  if (!(aad instanceof Uint8Array)) throw new TypeError('aad must be a Uint8Array');
  return Buffer.from(aad);
}
