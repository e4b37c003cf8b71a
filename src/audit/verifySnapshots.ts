import { asOfSnapshotName, streamNames } from '../journal/streamNames.js';
import type { EventStore } from '../store/eventStore.js';
import { loadAsOfIndex } from './asOfSnapshots.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
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
  }
  return { checked, rejections };
}
