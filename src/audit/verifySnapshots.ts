import { asOfSnapshotName, streamNames } from '../journal/streamNames.js';
import type { EventStore, Snapshot } from '../store/eventStore.js';
import { asOfRowsMatch, isAsOfRowsBody } from './asOfRows.js';
import { loadAsOfIndex } from './asOfSnapshots.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { rowSecret, rowsHeaderOf, storedRowsMatch } from './snapshotRows.js';
import { checkSnapshot, type SnapshotRejection } from './snapshotSeal.js';

export interface SnapshotsVerified {
  /** Snapshots found and checked: the keymeta snapshot and the as-of snapshots the index names. */
  readonly checked: number;
  /** Those not used (every kind; docs/audit.md says which are problems). */
  readonly rejections: readonly SnapshotRejection[];
}

/**
 * verify's look at the stored snapshots of a ledger: each must be bound to the event at its
 * position and carry a MAC under a recorded system key (src/audit/snapshotSeal.ts). A rejected
 * one is never used by a ledger, but someone put it there.
 */
export async function verifySnapshots(
  store: EventStore,
  prefix: string,
  keys: CheckpointMacKeys | null,
  head: bigint,
): Promise<SnapshotsVerified> {
  const names = [streamNames(prefix).keymetaSnapshot];
  for (const mark of await loadAsOfIndex(store, prefix))
    if (mark.snapshot) names.push(asOfSnapshotName(prefix, mark.position));
  let checked = 0;
  const rejections: SnapshotRejection[] = [];
  // Each stored row of the as-of series hashed once, whichever headers reference it.
  const seen = new Map<string, Map<string, Uint32Array>>();
  let current = head;
  for (const name of names) {
    for (let attempt = 0; ; attempt++) {
      const snapshot = await store.loadSnapshot(name);
      if (snapshot === null) break;
      if (attempt === 0) checked++;
      const rejection = await rejectionOf(store, prefix, name, snapshot, keys, current, seen);
      if (rejection === null) break;
      // A live ledger may save a newer snapshot while this one is checked: its rows are read in
      // pages after the header, and its position may be past the head read before. Only a
      // rejection that holds for a snapshot still stored, against a head read after it, is one.
      const now = await store.loadSnapshot(name);
      const moved = await store.headPosition();
      if (attempt === RECHECKS || (now !== null && sameSnapshot(now, snapshot) && moved === current)) {
        rejections.push(rejection);
        break;
      }
      current = moved;
    }
  }
  return { checked, rejections };
}

/** Re-checks of a snapshot that a concurrent save replaced; a store rewritten faster fails. */
const RECHECKS = 3;

function sameSnapshot(a: Snapshot, b: Snapshot): boolean {
  return a.position === b.position && JSON.stringify(a.state) === JSON.stringify(b.state);
}

async function rejectionOf(
  store: EventStore,
  prefix: string,
  name: string,
  snapshot: Snapshot,
  keys: CheckpointMacKeys | null,
  head: bigint,
  seen: Map<string, Map<string, Uint32Array>>,
): Promise<SnapshotRejection | null> {
  const result = await checkSnapshot(store, prefix, name, snapshot, keys, head);
  if (!result.ok) return result.rejection;
  if (keys === null) return null;
  if (isAsOfRowsBody(result.body))
    return checkAsOfRows(store, prefix, name, snapshot.position, result.body, keys, seen);
  return checkRows(store, name, snapshot.position, result.body, keys);
}

/**
 * A row-form historic snapshot (asOfRows.ts): every row its header references, in whichever
 * historic snapshot it is stored, hashed (once per verify) and summed against the sealed digest.
 */
async function checkAsOfRows(
  store: EventStore,
  prefix: string,
  name: string,
  position: bigint,
  body: unknown,
  keys: CheckpointMacKeys,
  seen: Map<string, Map<string, Uint32Array>>,
): Promise<SnapshotRejection | null> {
  if ((await asOfRowsMatch(store, prefix, body, keys, seen)) !== false) return null;
  return {
    snapshot: name,
    position,
    kind: 'snapshot-rows-mismatch',
    message:
      'the rows its header references are not the ones its seal sums: a row was edited, dropped or put back',
  };
}

/**
 * A row snapshot's rows (src/audit/snapshotRows.ts) against the digest in its sealed header: every
 * row is read and hashed. Null when they match, or when the snapshot has no rows, or its row
 * secret's key is not available (then only the header was checked).
 */
async function checkRows(
  store: EventStore,
  name: string,
  position: bigint,
  body: unknown,
  keys: CheckpointMacKeys,
): Promise<SnapshotRejection | null> {
  const header = rowsHeaderOf(body);
  if (header === null) return null;
  const secret = await rowSecret(keys, header.stkIdentity, name);
  if (secret === null || (await storedRowsMatch(store, name, header, secret))) return null;
  return {
    snapshot: name,
    position,
    kind: 'snapshot-rows-mismatch',
    message: `its rows are not the ${header.count} rows its seal counts: a row was edited, dropped, added or put back`,
  };
}
