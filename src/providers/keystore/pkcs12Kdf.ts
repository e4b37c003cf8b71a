import { createHash } from 'node:crypto';

export type Pkcs12Hash = 'sha1' | 'sha256';

/** Output size u and input block size v of each hash, as RFC 7292 appendix B.2 needs them. */
const HASH_SIZES: Readonly<Record<Pkcs12Hash, { readonly u: number; readonly v: number }>> = {
  sha1: { u: 20, v: 64 },
  sha256: { u: 32, v: 64 },
};

/** Appendix B.3: ID 3 derives the key of the integrity MAC (1 and 2 are for legacy PBE ciphers). */
export const PKCS12_MAC_KEY_ID = 3;

/**
 * The password form PKCS#12's own KDF takes: BMPString (UTF-16BE) plus a two-byte terminator. Java
 * encodes the same way, including the terminator for an empty password.
 */
export function pkcs12PasswordBytes(password: string): Uint8Array {
  const out = new Uint8Array(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) {
    const unit = password.charCodeAt(i);
    out[2 * i] = unit >> 8;
    out[2 * i + 1] = unit & 0xff;
  }
  return out;
}

/** RFC 7292 appendix B.2. Every intermediate derived from the password is zeroed before returning. */
export function pkcs12Kdf(
  hash: Pkcs12Hash,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  id: number,
  length: number,
): Uint8Array {
  const { u, v } = HASH_SIZES[hash];
  const d = new Uint8Array(v).fill(id);
  const s = repeatToBlocks(salt, v);
  const p = repeatToBlocks(password, v);
  const i = new Uint8Array(s.length + p.length);
  i.set(s, 0);
  i.set(p, s.length);
  p.fill(0);
  const out = new Uint8Array(length);
  const b = new Uint8Array(v);
  try {
    for (let offset = 0; offset < length; offset += u) {
      let a: Uint8Array = createHash(hash).update(d).update(i).digest();
      for (let r = 1; r < iterations; r++) {
        const next = createHash(hash).update(a).digest();
        a.fill(0);
        a = next;
      }
      out.set(a.subarray(0, Math.min(u, length - offset)), offset);
      if (offset + u < length) {
        for (let k = 0; k < v; k++) b[k] = a[k % u] ?? 0;
        // I_j = (I_j + B + 1) mod 2^(8v), each v-byte block of I taken as a big-endian integer.
        for (let j = 0; j < i.length; j += v) {
          let carry = 1;
          for (let k = v - 1; k >= 0; k--) {
            const sum = (i[j + k] ?? 0) + (b[k] ?? 0) + carry;
            i[j + k] = sum & 0xff;
            carry = sum >> 8;
          }
        }
      }
      a.fill(0);
    }
    return out;
  } finally {
    i.fill(0);
    b.fill(0);
  }
}

function repeatToBlocks(input: Uint8Array, v: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(input.length / v) * v);
  for (let k = 0; k < out.length; k++) out[k] = input[k % input.length] ?? 0;
  return out;
}
