import { DEFAULT_PREFIX, streamNames } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import { providerMacKeys, recordedSystemKeys } from './checkpointMacKeys.js';
import { type LedgerVerifyOptions, storeVerifySource } from './ledgerIntegrity.js';
import { openingSnapshotKeys } from './snapshotSeal.js';
import { verifyLedger } from './verifyLedger.js';
import type { VerifyReport } from './verifyReport.js';
import { verifySnapshots } from './verifySnapshots.js';

export interface VerifyStoreOptions extends LedgerVerifyOptions {
  /** The ledger's stream prefix (default `kl-`). */
  readonly prefix?: string;
  /** The provider holding the system keys; without one MACs are not checked (report.macs 'skipped'). */
  readonly provider?: ManagedKeyProvider;
  /** The ledger's checkpoint interval (its `checkpointEvery`; default 1000): bounds the uncovered tail. */
  readonly checkpointEvery?: number;
  /** The ledger's rollback anchor file (LedgerOptions.anchorFile), compared automatically. */
  readonly anchorFile?: string;
}

/**
 * verify without opening a Ledger: a ledger whose events no longer parse (which Ledger.open
 * refuses) can still be walked and its damage located. The CLI's `verify` runs this. MACs are
 * checked with the provider's system keys, found by the metadata the system stream records.
 */
export async function verifyStore(
  store: EventStore,
  options: VerifyStoreOptions = {},
): Promise<VerifyReport> {
  const names = streamNames(options.prefix ?? DEFAULT_PREFIX);
  // The source first: verifyLedger closes the keys, so nothing may fail between making and passing them.
  const source = await storeVerifySource(store, names);
  const keys =
    options.provider === undefined
      ? null
      : providerMacKeys(
          options.provider,
          await recordedSystemKeys(await store.readStream(names.system), names.system),
        );
  const provider = options.provider;
  return verifyLedger(source, {
    keys,
    names,
    anchor: options.anchor,
    checkpointEvery: options.checkpointEvery,
    anchorFile: options.anchorFile,
    snapshots: async () => {
      const snapshotKeys =
        provider === undefined ? null : await openingSnapshotKeys(store, names.system, provider);
      try {
        return await verifySnapshots(store, names.prefix, snapshotKeys, source.headPosition);
      } finally {
        snapshotKeys?.close();
      }
    },
  });
}
