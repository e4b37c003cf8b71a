import { open, readFile } from 'node:fs/promises';
import { KeyledgerError } from '../domain/errors.js';

/**
 * The rollback anchor file (docs/audit.md, "Rollback"): every checkpoint a ledger writes is also
 * appended here as one JSON line, and verify compares the store against the newest line. Kept on
 * another volume or machine, it catches what nothing inside the store can: the whole database
 * replaced by an older copy (which is internally consistent, checkpoints and all).
 *
 * Line format (docs/formats.md, "Anchor file"): {"v":1,"prefix":"kl-","revision":"3",
 * "hash":"<64 hex>","position":"120","coveredPosition":"118","at":"<ISO time>"}.
 */

export interface Anchor {
  readonly revision: bigint;
  readonly hash: string;
}

export interface AnchorRecord extends Anchor {
  readonly prefix: string;
  /** The checkpoint event's global position, and the last position it covers. */
  readonly position: bigint;
  readonly coveredPosition: bigint;
  readonly at: Date;
}

const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const HASH = /^[0-9a-f]{64}$/;

function anchorFileError(file: string, message: string, cause?: unknown): KeyledgerError {
  return new KeyledgerError(
    'ERR_ANCHOR_FILE',
    message,
    { file },
    cause === undefined ? undefined : { cause },
  );
}

/** Appends one checkpoint and waits until it is on disk (the file is created 0600). */
export async function appendAnchor(file: string, record: AnchorRecord): Promise<void> {
  const line = `${JSON.stringify({
    v: 1,
    prefix: record.prefix,
    revision: record.revision.toString(),
    hash: record.hash,
    position: record.position.toString(),
    coveredPosition: record.coveredPosition.toString(),
    at: record.at.toISOString(),
  })}\n`;
  try {
    const handle = await open(file, 'a', 0o600);
    try {
      await handle.appendFile(line, 'utf8');
      await handle.datasync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw anchorFileError(
      file,
      `the checkpoint was written, but the anchor file ${file} could not be`,
      error,
    );
  }
}

/**
 * The newest anchor of the ledger with `prefix` (highest revision), or null when the file does
 * not exist yet (no checkpoint was written since it was configured). ERR_ANCHOR_FILE if it cannot
 * be read or a line is not an anchor: a damaged anchor is never skipped silently.
 */
export async function readNewestAnchor(file: string, prefix: string): Promise<Anchor | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw anchorFileError(file, `the anchor file ${file} cannot be read`, error);
  }
  let newest: Anchor | null = null;
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    // The last line may be cut by a crash mid-append: only a complete line counts.
    if (line === '' || (index === lines.length - 1 && !text.endsWith('\n'))) continue;
    let value: { v?: unknown; prefix?: unknown; revision?: unknown; hash?: unknown };
    try {
      value = JSON.parse(line);
    } catch {
      value = {};
    }
    const { v, revision, hash } = value;
    if (
      v !== 1 ||
      typeof revision !== 'string' ||
      !DECIMAL.test(revision) ||
      typeof hash !== 'string' ||
      !HASH.test(hash)
    ) {
      throw anchorFileError(file, `${file}:${index + 1}: not an anchor line`);
    }
    if (value.prefix !== prefix) continue;
    const anchor = { revision: BigInt(revision), hash };
    if (newest === null || anchor.revision > newest.revision) newest = anchor;
  }
  return newest;
}
