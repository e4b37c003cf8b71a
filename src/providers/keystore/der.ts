/**
 * A deliberately small DER codec: only the universal types PKCS#12 uses, single-byte tags, definite
 * lengths. Keystore files are untrusted input, so the reader checks every length against the bytes it
 * was given and rejects anything DER forbids (indefinite or non-minimal lengths, non-minimal
 * integers) instead of guessing what a BER writer meant.
 */

import { KEYSTORE_LIMITS, type KeystoreLimit } from './keystoreLimits.js';

export class DerError extends Error {
  /** Set when the input broke one of the reader's bounds rather than DER itself. */
  readonly limit: KeystoreLimit | undefined;

  constructor(message: string, limit?: KeystoreLimit) {
    super(message);
    this.name = 'DerError';
    this.limit = limit;
  }
}

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const CONTEXT_CONSTRUCTED = 0xa0;
const CONTEXT_PRIMITIVE = 0x80;
/** Lengths beyond 2^31 cannot fit in any buffer we would accept; refusing them early keeps the arithmetic exact. */
const MAX_LENGTH_OCTETS = 4;

export function contextTag(n: number, constructed: boolean): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError('context tag number out of range');
  return (constructed ? CONTEXT_CONSTRUCTED : CONTEXT_PRIMITIVE) | n;
}

export interface DerElement {
  readonly tag: number;
  /** The content octets, a view into the reader's buffer. */
  readonly content: Uint8Array;
  /** The whole TLV, a view into the reader's buffer (MACs and signatures cover encodings, not values). */
  readonly encoded: Uint8Array;
}

export class DerReader {
  readonly #buf: Uint8Array;
  #pos: number;
  readonly #end: number;
  readonly #depth: number;

  /** `depth` counts the constructed elements around `buf`; readers over nested content pass theirs on. */
  constructor(buf: Uint8Array, depth = 0) {
    if (depth > KEYSTORE_LIMITS.nesting) {
      throw new DerError(`nesting deeper than ${KEYSTORE_LIMITS.nesting} levels`, 'nesting');
    }
    this.#buf = buf;
    this.#pos = 0;
    this.#end = buf.length;
    this.#depth = depth;
  }

  /** A reader over content found inside this one, one level deeper. */
  nested(content: Uint8Array): DerReader {
    return new DerReader(content, this.#depth + 1);
  }

  get done(): boolean {
    return this.#pos >= this.#end;
  }

  peekTag(): number | undefined {
    return this.done ? undefined : this.#buf[this.#pos];
  }

  next(): DerElement {
    const start = this.#pos;
    const tag = this.#byteAt(start);
    if ((tag & 0x1f) === 0x1f) throw new DerError(`high-tag-number form at offset ${start} is not supported`);
    let pos = start + 1;
    const first = this.#byteAt(pos);
    pos += 1;
    let length: number;
    if (first < 0x80) {
      length = first;
    } else if (first === 0x80) {
      throw new DerError(`indefinite length at offset ${start} is not DER`);
    } else {
      const count = first & 0x7f;
      if (count > MAX_LENGTH_OCTETS) throw new DerError(`length at offset ${start} is too large`);
      length = 0;
      for (let i = 0; i < count; i++) {
        length = length * 256 + this.#byteAt(pos);
        pos += 1;
      }
      // DER requires the shortest form: no long form below 128, no leading zero octets.
      if (length < 0x80 || length < 256 ** (count - 1)) {
        throw new DerError(`non-minimal length encoding at offset ${start}`);
      }
    }
    if (length > this.#end - pos) {
      throw new DerError(`element at offset ${start} runs past the end of its container`);
    }
    const contentEnd = pos + length;
    this.#pos = contentEnd;
    return {
      tag,
      content: this.#buf.subarray(pos, contentEnd),
      encoded: this.#buf.subarray(start, contentEnd),
    };
  }

  expect(tag: number, what: string): DerElement {
    const element = this.next();
    if (element.tag !== tag) {
      throw new DerError(`expected ${what} (tag 0x${hex(tag)}), found tag 0x${hex(element.tag)}`);
    }
    return element;
  }

  sequence(): DerReader {
    return this.nested(this.expect(TAG.SEQUENCE, 'SEQUENCE').content);
  }

  set(): DerReader {
    return this.nested(this.expect(TAG.SET, 'SET').content);
  }

  /** `[n] EXPLICIT`: a reader over the wrapped element(s). */
  explicit(n: number): DerReader {
    return this.nested(this.expect(contextTag(n, true), `[${n}]`).content);
  }

  /**
   * A non-negative INTEGER that fits in 31 bits. PKCS#12 only uses integers as versions, iteration
   * counts and key lengths, so anything larger is treated as malformed rather than carried as bigint.
   */
  integer(): number {
    const { content } = this.expect(TAG.INTEGER, 'INTEGER');
    const first = content[0];
    if (first === undefined) throw new DerError('empty INTEGER');
    if (first & 0x80) throw new DerError('negative INTEGER');
    const second = content[1];
    if (first === 0 && second !== undefined && (second & 0x80) === 0) {
      throw new DerError('non-minimal INTEGER encoding');
    }
    const significant = first === 0 ? content.subarray(1) : content;
    if (significant.length > 4 || (significant.length === 4 && (significant[0] ?? 0) & 0x80)) {
      throw new DerError('INTEGER too large');
    }
    let value = 0;
    for (const byte of significant) value = value * 256 + byte;
    return value;
  }

  oid(): string {
    return decodeOid(this.expect(TAG.OID, 'OBJECT IDENTIFIER').content);
  }

  /** A primitive OCTET STRING (constructed ones are BER). The result is a view: copy before keeping. */
  octetString(): Uint8Array {
    return this.expect(TAG.OCTET_STRING, 'OCTET STRING').content;
  }

  null(): void {
    if (this.expect(TAG.NULL, 'NULL').content.length !== 0) throw new DerError('NULL with content');
  }

  bmpString(): string {
    const { content } = this.expect(TAG.BMP_STRING, 'BMPString');
    if (content.length % 2 !== 0) throw new DerError('BMPString of odd length');
    let text = '';
    for (let i = 0; i < content.length; i += 2) {
      text += String.fromCharCode(((content[i] ?? 0) << 8) | (content[i + 1] ?? 0));
    }
    return text;
  }

  utf8String(): string {
    const { content } = this.expect(TAG.UTF8_STRING, 'UTF8String');
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(content);
    } catch {
      throw new DerError('UTF8String is not valid UTF-8');
    }
  }

  /** Every parse ends here, so trailing bytes inside a structure are never silently ignored. */
  end(what: string): void {
    if (!this.done) throw new DerError(`unexpected trailing data in ${what}`);
  }

  #byteAt(pos: number): number {
    const byte = pos < this.#end ? this.#buf[pos] : undefined;
    if (byte === undefined) throw new DerError(`truncated element at offset ${pos}`);
    return byte;
  }
}

/** Bounded before decoding: bigint arithmetic over one long arc is quadratic in its length. */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  if (content.length > KEYSTORE_LIMITS.oidBytes) {
    throw new DerError(`OBJECT IDENTIFIER longer than ${KEYSTORE_LIMITS.oidBytes} bytes`, 'oidBytes');
  }
  const arcs: bigint[] = [];
  let value = 0n;
  let inArc = false;
  let arcBytes = 0;
  for (const byte of content) {
    if (!inArc && byte === 0x80) throw new DerError('non-minimal OBJECT IDENTIFIER arc');
    arcBytes += 1;
    if (arcBytes > KEYSTORE_LIMITS.oidArcBytes) {
      throw new DerError(
        `OBJECT IDENTIFIER arc longer than ${KEYSTORE_LIMITS.oidArcBytes} bytes`,
        'oidArcBytes',
      );
    }
    value = (value << 7n) | BigInt(byte & 0x7f);
    inArc = (byte & 0x80) !== 0;
    if (!inArc) {
      arcs.push(value);
      value = 0n;
      arcBytes = 0;
    }
  }
  if (inArc) throw new DerError('truncated OBJECT IDENTIFIER arc');
  const [first, ...rest] = arcs;
  if (first === undefined) throw new DerError('empty OBJECT IDENTIFIER');
  const top = first < 40n ? 0n : first < 80n ? 1n : 2n;
  return [top, first - top * 40n, ...rest].join('.');
}

export function encodeOid(dotted: string): Uint8Array {
  const parts = dotted.split('.');
  if (parts.length < 2 || parts.some((p) => !/^(0|[1-9][0-9]*)$/.test(p))) {
    throw new RangeError(`not a dotted OID: ${dotted}`);
  }
  const arcs = parts.map((p) => BigInt(p));
  const [top = 0n, second = 0n, ...rest] = arcs;
  if (top > 2n || (top < 2n && second >= 40n)) throw new RangeError(`invalid OID: ${dotted}`);
  const out: number[] = [];
  for (const arc of [top * 40n + second, ...rest]) {
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let rem = arc >> 7n; rem > 0n; rem >>= 7n) groups.unshift(Number(rem & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}

/** Tag and length octets alone, for callers that assemble secret content in one buffer they can zero. */
export function header(tag: number, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 0x7fffffff) throw new RangeError('bad DER length');
  if (length < 0x80) return Uint8Array.of(tag, length);
  const octets: number[] = [];
  for (let rem = length; rem > 0; rem = Math.floor(rem / 256)) octets.unshift(rem % 256);
  return Uint8Array.of(tag, 0x80 | octets.length, ...octets);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  // A fresh Uint8Array rather than Buffer.concat: Buffer may carve small results out of a shared pool.
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function tlv(tag: number, content: Uint8Array): Uint8Array {
  return concat([header(tag, content.length), content]);
}

export function sequence(...items: Uint8Array[]): Uint8Array {
  return tlv(TAG.SEQUENCE, concat(items));
}

/** DER orders SET OF members by their encodings; Java sorts them too, so our output matches its. */
export function set(...items: Uint8Array[]): Uint8Array {
  return tlv(TAG.SET, concat([...items].sort(compareEncodings)));
}

export function explicit(n: number, inner: Uint8Array): Uint8Array {
  return tlv(contextTag(n, true), inner);
}

export function integer(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw new RangeError('bad INTEGER value');
  const octets: number[] = [];
  for (let rem = value; rem > 0; rem = Math.floor(rem / 256)) octets.unshift(rem % 256);
  if (octets.length === 0 || (octets[0] ?? 0) & 0x80) octets.unshift(0);
  return tlv(TAG.INTEGER, Uint8Array.from(octets));
}

export function octetString(content: Uint8Array): Uint8Array {
  return tlv(TAG.OCTET_STRING, content);
}

export function nullValue(): Uint8Array {
  return Uint8Array.of(TAG.NULL, 0);
}

export function bmpString(text: string): Uint8Array {
  const content = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    content[2 * i] = unit >> 8;
    content[2 * i + 1] = unit & 0xff;
  }
  return tlv(TAG.BMP_STRING, content);
}

function compareEncodings(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return a.length - b.length;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
