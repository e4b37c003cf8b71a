import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

/**
 * An independent implementation of the envelope message format (docs/formats.md, "Envelope"),
 * written from the document with node:crypto alone: it imports nothing from src/crypto/envelope*.ts
 * or derivedKey.ts, so a test that compares it with the Envelope class checks the code against
 * the documented format, not against itself. Used to compute the known-answer vectors, to forge
 * ciphertexts with chosen fields (key commitment, disabled keys), and to parse Envelope's output.
 */

/** Layout, restated by hand from docs/formats.md (do not import these from src). */
export const LAYOUT = {
  magic: Buffer.from('4b4c45', 'hex'), // "KLE"
  version: 1,
  modeMessage: 1,
  offsets: { magic: 0, version: 3, mode: 4, keyId: 5, salt: 21, nonce: 53, commitment: 65, body: 97 },
  sizes: { keyId: 16, salt: 32, nonce: 12, commitment: 32, tag: 16 },
  headerBytes: 97,
  overhead: 113,
} as const;

const KEY_INFO_LABEL = Buffer.from('6b65796c65646765722d7631206b6579', 'hex'); // "keyledger-v1 key"
const COMMIT_INFO_LABEL = Buffer.from('6b65796c65646765722d763120636f6d6d6974', 'hex'); // "keyledger-v1 commit"

/** HKDF info: label ‖ 0x00 ‖ mode ‖ key id (16 bytes). */
export function hkdfInfo(label: 'key' | 'commit', mode: number, keyId: Uint8Array): Buffer {
  return Buffer.concat([label === 'key' ? KEY_INFO_LABEL : COMMIT_INFO_LABEL, Buffer.of(0x00, mode), keyId]);
}

export interface Derived {
  readonly key: Buffer;
  readonly commitment: Buffer;
}

/** The derived encryption key and the commitment, each HKDF-SHA256(ikm = DEK, salt, info, 32). */
export function derive(
  dek: Uint8Array,
  salt: Uint8Array,
  keyId: Uint8Array,
  mode: number = LAYOUT.modeMessage,
): Derived {
  return {
    key: Buffer.from(hkdfSync('sha256', dek, salt, hkdfInfo('key', mode, keyId), 32)),
    commitment: Buffer.from(hkdfSync('sha256', dek, salt, hkdfInfo('commit', mode, keyId), 32)),
  };
}

export interface SealInput {
  readonly dek: Uint8Array;
  readonly keyId: Uint8Array;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
  readonly plaintext: Uint8Array;
  readonly aad?: Uint8Array;
  /** Header overrides, for forging: a commitment other than the derived one, another version or mode. */
  readonly commitment?: Uint8Array;
  readonly version?: number;
  readonly mode?: number;
}

/** The header: magic ‖ version ‖ mode ‖ key id ‖ salt ‖ nonce ‖ commitment (97 bytes). */
export function header(input: SealInput, commitment: Uint8Array): Buffer {
  const out = Buffer.concat([
    LAYOUT.magic,
    Buffer.of(input.version ?? LAYOUT.version, input.mode ?? LAYOUT.modeMessage),
    input.keyId,
    input.salt,
    input.nonce,
    commitment,
  ]);
  if (out.length !== LAYOUT.headerBytes) throw new RangeError(`header is ${out.length} bytes`);
  return out;
}

/**
 * A message ciphertext: header ‖ AES-256-GCM(derived key, nonce, AAD = header ‖ aad) ‖ tag. The
 * derived key always uses the message mode, so a forged version or mode byte changes only the
 * header (and so the AAD): the GCM tag still verifies under the real derived key.
 */
export function seal(input: SealInput): Buffer {
  const derived = derive(input.dek, input.salt, input.keyId);
  const head = header(input, input.commitment ?? derived.commitment);
  const cipher = createCipheriv('aes-256-gcm', derived.key, input.nonce);
  cipher.setAAD(Buffer.concat([head, input.aad ?? Buffer.alloc(0)]));
  const body = Buffer.concat([cipher.update(input.plaintext), cipher.final()]);
  return Buffer.concat([head, body, cipher.getAuthTag()]);
}

export interface Parsed {
  readonly magic: Buffer;
  readonly version: number;
  readonly mode: number;
  readonly keyId: Buffer;
  readonly salt: Buffer;
  readonly nonce: Buffer;
  readonly commitment: Buffer;
  readonly header: Buffer;
  readonly body: Buffer;
  readonly tag: Buffer;
}

/** Splits a message ciphertext into its fields by the documented offsets (length-checked). */
export function parse(ciphertext: Uint8Array): Parsed {
  const bytes = Buffer.from(ciphertext);
  if (bytes.length < LAYOUT.overhead) throw new RangeError(`ciphertext is ${bytes.length} bytes`);
  const { offsets: o, sizes: s } = LAYOUT;
  return {
    magic: bytes.subarray(o.magic, o.version),
    version: bytes[o.version] ?? -1,
    mode: bytes[o.mode] ?? -1,
    keyId: bytes.subarray(o.keyId, o.keyId + s.keyId),
    salt: bytes.subarray(o.salt, o.salt + s.salt),
    nonce: bytes.subarray(o.nonce, o.nonce + s.nonce),
    commitment: bytes.subarray(o.commitment, o.commitment + s.commitment),
    header: bytes.subarray(0, LAYOUT.headerBytes),
    body: bytes.subarray(LAYOUT.headerBytes, bytes.length - s.tag),
    tag: bytes.subarray(bytes.length - s.tag),
  };
}

/**
 * Opens a message ciphertext independently of src (throws on any mismatch). `checks: 'gcm-only'`
 * skips the prefix and commitment checks: it tells whether the GCM tag alone verifies.
 */
export function open(
  dek: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array = Buffer.alloc(0),
  checks: 'all' | 'gcm-only' = 'all',
): Buffer {
  const p = parse(ciphertext);
  const derived = derive(dek, p.salt, p.keyId);
  if (checks === 'all') {
    if (!p.magic.equals(LAYOUT.magic) || p.version !== LAYOUT.version || p.mode !== LAYOUT.modeMessage) {
      throw new Error('bad prefix');
    }
    if (!derived.commitment.equals(p.commitment)) throw new Error('bad commitment');
  }
  const decipher = createDecipheriv('aes-256-gcm', derived.key, p.nonce);
  decipher.setAAD(Buffer.concat([p.header, aad]));
  decipher.setAuthTag(p.tag);
  return Buffer.concat([decipher.update(p.body), decipher.final()]);
}

/** A known-answer vector as stored in test/fixtures/envelope-vectors.json (all bytes hex). */
export interface EnvelopeVector {
  readonly name: string;
  readonly dek: string;
  readonly keyId: string;
  readonly salt: string;
  readonly nonce: string;
  readonly plaintext: string;
  readonly aad: string;
  readonly keyInfo: string;
  readonly commitInfo: string;
  readonly derivedKey: string;
  readonly commitment: string;
  readonly header: string;
  readonly ciphertext: string;
}

/** The fixed inputs of the vectors. */
export const VECTOR_INPUTS: readonly {
  name: string;
  dek: string;
  keyId: string;
  salt: string;
  nonce: string;
  plaintext: string;
  aad: string;
}[] = [
  {
    name: 'empty plaintext, no AAD',
    dek: seq(0x00, 32),
    keyId: 'e2b28ca271dbe789245b3930f029d3e2',
    salt: seq(0x40, 32),
    nonce: seq(0x80, 12),
    plaintext: '',
    aad: '',
  },
  {
    name: 'one byte, no AAD',
    dek: seq(0x00, 32),
    keyId: 'e2b28ca271dbe789245b3930f029d3e2',
    salt: seq(0x40, 32),
    nonce: seq(0x90, 12),
    plaintext: '2a',
    aad: '',
  },
  {
    name: '100 bytes with AAD',
    dek: seq(0x20, 32),
    keyId: '00112233445566778899aabbccddeeff',
    salt: seq(0xa0, 32),
    nonce: seq(0xe0, 12),
    plaintext: Buffer.from(
      'The quick brown fox jumps over the lazy dog. '.repeat(3).slice(0, 100),
      'ascii',
    ).toString('hex'),
    aad: Buffer.from('table=orders;row=42', 'ascii').toString('hex'),
  },
  {
    name: '17 bytes, 1-byte AAD, all-ones salt',
    dek: 'ff'.repeat(32),
    keyId: 'ffffffffffffffffffffffffffffffff',
    salt: 'ff'.repeat(32),
    nonce: 'ff'.repeat(12),
    plaintext: seq(0x00, 17),
    aad: '00',
  },
];

/** hex of the `length` bytes start, start+1, … (mod 256). */
function seq(start: number, length: number): string {
  return Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff)).toString('hex');
}

/** Computes a full vector from its inputs with node:crypto alone. */
export function computeVector(input: (typeof VECTOR_INPUTS)[number]): EnvelopeVector {
  const hex = (h: string) => Buffer.from(h, 'hex');
  const sealInput: SealInput = {
    dek: hex(input.dek),
    keyId: hex(input.keyId),
    salt: hex(input.salt),
    nonce: hex(input.nonce),
    plaintext: hex(input.plaintext),
    aad: hex(input.aad),
  };
  const derived = derive(sealInput.dek, sealInput.salt, sealInput.keyId);
  return {
    ...input,
    keyInfo: hkdfInfo('key', LAYOUT.modeMessage, sealInput.keyId).toString('hex'),
    commitInfo: hkdfInfo('commit', LAYOUT.modeMessage, sealInput.keyId).toString('hex'),
    derivedKey: derived.key.toString('hex'),
    commitment: derived.commitment.toString('hex'),
    header: header(sealInput, derived.commitment).toString('hex'),
    ciphertext: seal(sealInput).toString('hex'),
  };
}
