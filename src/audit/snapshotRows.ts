import * as crypto from 'node:crypto';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { addRowHash } from './rowHash.js';
import { RowHashWorker } from './rowHashWorker.js';

/**
 * The rows of a row snapshot (EventStore.saveSnapshotRows) are bound to its sealed header by a
 * digest: the sum, lane by lane (8 × 32 bits, modulo 2^32), of a keyed hash of every row
 * (SHA-256 of a secret, the row's key and its value), with the number of rows. The header carries
 * digest and count under the seal's MAC (src/audit/snapshotSeal.ts), so a row edited, dropped,
 * added, or put back from an older snapshot changes the sum, and the reader, which adds up every
 * row as it loads them, rejects the snapshot. A sum (not a chain) is what lets a save change only
 * the rows that changed: it subtracts the old row's hash and adds the new one's. Without the
 * secret nobody can compute a row's hash, so no set of rows can be chosen to reach a given sum
 * (a keyed additive multiset hash). The secret is a MAC, under the snapshot label, of a fixed
 * message naming the snapshot: it changes with the system key, and a snapshot sealed under an
 * older key is rewritten whole at its next save.
 */

const ROWS_SECRET_PURPOSE = 'keyledger snapshot rows v1';

/** The row secret of snapshot `name` under system key `stkIdentity`, or null if that key cannot MAC. */
export async function rowSecret(
  keys: CheckpointMacKeys,
  stkIdentity: string,
  name: string,
): Promise<Buffer | null> {
  const answer = await keys.mac(stkIdentity, Buffer.from(`${ROWS_SECRET_PURPOSE}\n${name}`, 'utf8'));
  return answer.kind === 'mac' ? answer.mac : null;
}

/** The running digest of a set of rows. */
export class RowDigest {
  readonly #lanes: Uint32Array;
  #count: number;
  readonly #secret: Buffer;
  /** The secret as the hash's first 64 characters. */
  readonly #secretHex: string;

  constructor(secret: Buffer, lanes: Uint32Array = new Uint32Array(8), count = 0) {
    this.#secret = secret;
    this.#secretHex = secret.toString('hex');
    this.#lanes = lanes;
    this.#count = count;
  }

  /** A digest stored as `digestHex()` gave it, or null if it is not one. */
  static parse(secret: Buffer, hex: unknown, count: unknown): RowDigest | null {
    if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) return null;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) return null;
    const bytes = Buffer.from(hex, 'hex');
    const lanes = new Uint32Array(8);
    for (let i = 0; i < 8; i++) lanes[i] = bytes.readUInt32BE(i * 4);
    return new RowDigest(secret, lanes, count);
  }

  get count(): number {
    return this.#count;
  }

  add(key: string, value: string): void {
    this.#step(key, value, 1);
  }

  remove(key: string, value: string): void {
    this.#step(key, value, -1);
  }

  digestHex(): string {
    const bytes = Buffer.alloc(32);
    for (let i = 0; i < 8; i++) bytes.writeUInt32BE(this.#lanes[i] as number, i * 4);
    return bytes.toString('hex');
  }

  equals(other: RowDigest): boolean {
    return this.#count === other.#count && this.digestHex() === other.digestHex();
  }

  copy(): RowDigest {
    return new RowDigest(this.#secret, new Uint32Array(this.#lanes), this.#count);
  }

  #step(key: string, value: string, sign: 1 | -1): void {
    addRowHash(crypto, this.#secretHex, key, value, this.#lanes, sign);
    this.#count += sign;
  }
}

/** What a row snapshot's sealed header says of its rows (the body's `rows` member). */
export interface RowsHeader {
  readonly count: number;
  readonly digest: string;
  /** The system key whose row secret hashed the rows. */
  readonly stkIdentity: string;
}

/** The rows part of a sealed body, or null if the body is not a row snapshot's. */
export function rowsHeaderOf(body: unknown): RowsHeader | null {
  const rows = (body as { rows?: unknown } | null)?.rows as
    | Partial<Record<keyof RowsHeader, unknown>>
    | undefined;
  if (typeof rows !== 'object' || rows === null) return null;
  const { count, digest, stkIdentity } = rows;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) return null;
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) return null;
  if (typeof stkIdentity !== 'string' || !/^[0-9a-f]{16}$/.test(stkIdentity)) return null;
  return { count, digest, stkIdentity };
}

/** From this many rows on, an open hashes them on a worker thread (starting one costs ~30 ms). */
export const PARALLEL_HASH_ROWS = 50_000;

/**
 * Reads every row of snapshot `name`, adding each to a digest (and handing it to `each`, which
 * answers false for a row it cannot use); whether the rows are exactly the ones the header sealed.
 * A large snapshot's rows are hashed on a worker thread (rowHashWorker.ts) while `each` runs here.
 */
export async function storedRowsMatch(
  store: { readSnapshotRows(name: string): AsyncIterable<readonly { key: string; value: string }[]> },
  name: string,
  header: RowsHeader,
  secret: Buffer,
  each: (key: string, value: string) => boolean = () => true,
  parallelFrom: number = PARALLEL_HASH_ROWS,
): Promise<boolean> {
  let usable = true;
  let digest: RowDigest;
  if (header.count >= parallelFrom) {
    const worker = new RowHashWorker(secret);
    try {
      for await (const page of store.readSnapshotRows(name)) {
        await worker.add(page);
        if (usable) {
          for (const { key, value } of page) {
            if (!each(key, value)) {
              usable = false;
              break;
            }
          }
        }
      }
    } catch (error) {
      await worker.close();
      throw error;
    }
    const sum = await worker.finish();
    digest = new RowDigest(secret, sum.lanes, sum.count);
  } else {
    digest = new RowDigest(secret);
    for await (const page of store.readSnapshotRows(name)) {
      for (const { key, value } of page) {
        digest.add(key, value);
        if (usable && !each(key, value)) usable = false;
      }
    }
  }
  return usable && digest.count === header.count && digest.digestHex() === header.digest;
}
