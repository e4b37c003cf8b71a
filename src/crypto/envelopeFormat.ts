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
