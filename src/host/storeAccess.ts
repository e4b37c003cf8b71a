import { DEFAULT_PREFIX } from '../journal/streamNames.js';
import type { StoreAccess } from '../operations/operation.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import { providerFor } from './config.js';
import type { OpenLedger } from './openLedger.js';

/**
 * The store of an opened ledger as the operations that read it unreplayed take it (verify,
 * audit-export), for a host that keeps one ledger open (the server). The provider for MAC keys is
 * made on first use; `close` releases it (the store closes with the ledger).
 */
export function storeAccessOf(opened: OpenLedger): { readonly access: StoreAccess; close(): Promise<void> } {
  let provider: ManagedKeyProvider | null = null;
  return {
    access: {
      store: opened.store,
      prefix: opened.config.prefix ?? DEFAULT_PREFIX,
      checkpointEvery: opened.config.checkpointEvery,
      anchorFile: opened.config.anchorFile,
      provider: () => {
        provider ??= providerFor(opened.config);
        return provider;
      },
    },
    close: async () => {
      await provider?.close();
      provider = null;
    },
  };
}
