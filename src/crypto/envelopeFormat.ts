/**
 * The envelope's byte layout (docs/formats.md, "Envelope"). Every field has a fixed size, so a
 * header is parsed by offsets after one length check; nothing variable is read from the input.
 *
 * message (mode 1):
 *   0  3  magic "KLE"
 *   3  1  version (1)
 *   4  1  mode (1 = message, 2 = stream)
 *   5 16  key id
 *  21 32  salt (HKDF salt of the derived key)
 *  53 12  nonce
 *  65 32  key commitment
 *  97  n  ciphertext
 * 97+n 16 tag
 * The AEAD's associated data is the 97 header bytes followed by the caller's AAD, if any.
 */
export const MAGIC = Buffer.from('KLE', 'ascii');
export const FORMAT_VERSION = 1;
export const MODE_MESSAGE = 1;
export const MODE_STREAM = 2;

export const KEY_ID_BYTES = 16;
export const SALT_BYTES = 32;
export const NONCE_BYTES = 12;
export const COMMITMENT_BYTES = 32;
export const TAG_BYTES = 16;

export const OFFSET_MODE = 4;
export const OFFSET_KEY_ID = 5;
export const OFFSET_SALT = OFFSET_KEY_ID + KEY_ID_BYTES;
export const OFFSET_NONCE = OFFSET_SALT + SALT_BYTES;
export const OFFSET_COMMITMENT = OFFSET_NONCE + NONCE_BYTES;
export const MESSAGE_HEADER_BYTES = OFFSET_COMMITMENT + COMMITMENT_BYTES;
export const MESSAGE_OVERHEAD = MESSAGE_HEADER_BYTES + TAG_BYTES;

/** True when `bytes` starts with the magic, this version and `mode`. */
export function hasPrefix(bytes: Uint8Array, mode: number): boolean {
  return (
    bytes.length > OFFSET_MODE &&
    bytes[0] === MAGIC[0] &&
    bytes[1] === MAGIC[1] &&
    bytes[2] === MAGIC[2] &&
    bytes[3] === FORMAT_VERSION &&
    bytes[OFFSET_MODE] === mode
  );
}

/** Writes the fixed prefix (magic, version, mode, key id, salt) at the start of `out`. */
export function writePrefix(out: Buffer, mode: number, keyId: Uint8Array, salt: Uint8Array): void {
  MAGIC.copy(out, 0);
  out[3] = FORMAT_VERSION;
  out[OFFSET_MODE] = mode;
  out.set(keyId, OFFSET_KEY_ID);
  out.set(salt, OFFSET_SALT);
}

/**
 * stream (mode 2), docs/formats.md "Envelope stream". Header (96 bytes):
 *   0  3  magic "KLE"
 *   3  1  version (1)
 *   4  1  mode (2)
 *   5 16  key id
 *  21 32  salt (HKDF salt of the stream's derived key; fresh per stream, or shared: streamEncryptKeys.ts)
 *  53 32  key commitment
 *  85  4  chunk size C, u32 big-endian, 1 ≤ C ≤ 16 MiB (encrypt's default 64 KiB)
 *  89  7  nonce prefix (unique per derived key: random per stream, or a counter: streamEncryptKeys.ts)
 * then chunks 0, 1, …, n-1, each `ciphertext ‖ tag(16)`. Every chunk but the last holds exactly C
 * plaintext bytes; the last holds 0 to C-1 (so a stream whose length is a multiple of C, including
 * 0, ends with an empty chunk that is only a tag). Chunk i's nonce is
 * `nonce prefix ‖ u32 BE i ‖ final flag` (flag 0x01 on the last chunk, 0x00 on the others), and its
 * associated data is the 96 header bytes followed by the caller's AAD, if any (STREAM, Hoang–
 * Reyhanitabar–Rogaway–Vizár 2015). At most 2^32 chunks per stream.
 */
export const STREAM_OFFSET_COMMITMENT = OFFSET_SALT + SALT_BYTES;
export const STREAM_OFFSET_CHUNK_SIZE = STREAM_OFFSET_COMMITMENT + COMMITMENT_BYTES;
export const STREAM_CHUNK_SIZE_BYTES = 4;
export const STREAM_OFFSET_NONCE_PREFIX = STREAM_OFFSET_CHUNK_SIZE + STREAM_CHUNK_SIZE_BYTES;
export const STREAM_NONCE_PREFIX_BYTES = 7;
export const STREAM_HEADER_BYTES = STREAM_OFFSET_NONCE_PREFIX + STREAM_NONCE_PREFIX_BYTES;
export const STREAM_DEFAULT_CHUNK_BYTES = 64 * 1024;
export const STREAM_MIN_CHUNK_BYTES = 1;
export const STREAM_MAX_CHUNK_BYTES = 16 * 1024 * 1024;
/** Chunk indices are u32: one stream (one derived key, one nonce prefix) holds at most 2^32 chunks. */
export const STREAM_MAX_CHUNKS = 2 ** 32;
export const STREAM_FINAL_FLAG = 0x01;

/** Writes chunk `index`'s 12-byte nonce into `out`: nonce prefix ‖ u32 BE index ‖ final flag. */
export function writeStreamNonce(out: Buffer, prefix: Uint8Array, index: number, final: boolean): void {
  out.set(prefix, 0);
  out.writeUInt32BE(index, STREAM_NONCE_PREFIX_BYTES);
  out[NONCE_BYTES - 1] = final ? STREAM_FINAL_FLAG : 0x00;
}
