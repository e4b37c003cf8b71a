import { asOfSnapshotName, streamNames } from '../journal/streamNames.js';
import type { EventStore } from '../store/eventStore.js';
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
  for (const name of names) {
    const snapshot = await store.loadSnapshot(name);
    if (snapshot === null) continue;
    checked++;
    const result = await checkSnapshot(store, prefix, name, snapshot, keys, head);
    if (!result.ok) rejections.push(result.rejection);
    else if (keys !== null) {
      const rows = await checkRows(store, name, snapshot.position, result.body, keys);
      if (rows !== null) rejections.push(rows);
    }
  }
  return { checked, rejections };
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
