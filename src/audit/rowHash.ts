import type * as NodeCrypto from 'node:crypto';

/**
 * One row's keyed hash added to (sign 1) or taken from (sign -1) a row snapshot's digest lanes
 * (src/audit/snapshotRows.ts): SHA-256 of the secret, the key's length (so key and value cannot
 * trade characters), the key and the value, in one update (in Node each call, not each byte, is
 * most of a short row's cost); its 8 big-endian 32-bit words added lane by lane, modulo 2^32.
 *
 * It uses nothing but its parameters: the row hash worker (rowHashWorker.ts) runs this function's
 * source text, so the thread and the opening process hash rows with one definition.
 */
export function addRowHash(
  crypto: typeof NodeCrypto,
  secretHex: string,
  key: string,
  value: string,
  lanes: Uint32Array,
  sign: number,
): void {
  const text = `${secretHex}${key.length}:${key}\n${value}`;
  // Node's one-shot `crypto.hash` (Node >= 20.12) where there is one: at a million rows, a Hash
  // object and a Buffer per row are a second of an open.
  const oneShot = (crypto as unknown as { hash?: (a: string, d: string, e: 'latin1') => string }).hash;
  const hash =
    typeof oneShot === 'function'
      ? oneShot('sha256', text, 'latin1')
      : crypto.createHash('sha256').update(text, 'utf8').digest().toString('latin1');
  for (let i = 0, at = 0; i < 8; i++, at += 4) {
    const lane =
      ((hash.charCodeAt(at) << 24) |
        (hash.charCodeAt(at + 1) << 16) |
        (hash.charCodeAt(at + 2) << 8) |
        hash.charCodeAt(at + 3)) >>>
      0;
    lanes[i] = (lanes[i] as number) + sign * lane;
  }
}
