import { resolve } from 'node:path';
import { isTamperRejection } from '../audit/snapshotSeal.js';
import { Ledger } from '../ledger/ledger.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import { DEFAULT_STORE_URL, openEventStore, redactStoreUrl } from '../store/storeUrl.js';
import { DEFAULT_CONFIG_FILE, type LedgerConfig, loadConfig, providerFor } from './config.js';

export interface GlobalOptions {
  readonly store?: string;
  readonly config?: string;
  readonly actor?: string;
}

export interface OpenLedger {
  readonly ledger: Ledger;
  readonly config: LedgerConfig;
  /** The store URL in use, with any credentials replaced by `***` (it gets printed). */
  readonly storeUrl: string;
  close(): Promise<void>;
}

/**
 * Store URL precedence: --store, then KEYLEDGER_STORE (an empty one counts as unset), then the
 * config file, then the default. A relative sqlite path is taken from the working directory, or from
 * the config file's folder when the URL comes from the file, like every other path in it.
 */
export function storeLocationOf(
  options: GlobalOptions,
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
  config: LedgerConfig | null,
): { readonly url: string; readonly baseDir: string } {
  if (options.store !== undefined) return { url: options.store, baseDir: cwd };
  if (env.KEYLEDGER_STORE) return { url: env.KEYLEDGER_STORE, baseDir: cwd };
  if (config?.store !== undefined) return { url: config.store, baseDir: config.baseDir };
  return { url: DEFAULT_STORE_URL, baseDir: cwd };
}

export function configPathOf(options: GlobalOptions, cwd: string): string {
  return resolve(cwd, options.config ?? DEFAULT_CONFIG_FILE);
}

/**
 * Opens store, provider and ledger as the CLI's options say; close() releases all three. `warn`
 * is told of every stored snapshot the ledger found tampered with and did not use.
 */
export async function openLedger(
  options: GlobalOptions,
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
  warn?: (text: string) => void,
): Promise<OpenLedger> {
  const config = loadConfig(configPathOf(options, cwd));
  const location = storeLocationOf(options, cwd, env, config);
  const storeUrl = redactStoreUrl(location.url);
  const store: EventStore = openEventStore(location.url, location.baseDir);
  let provider: ManagedKeyProvider | null = null;
  try {
    provider = providerFor(config);
    const ledger = await Ledger.open({
      store,
      provider,
      prefix: config.prefix,
      actor: options.actor ?? env.KEYLEDGER_ACTOR,
      resolver: { dynamicLookup: config.dynamicLookup },
      destroyGracePeriodMs: config.destroyGracePeriodMs,
      checkpointEvery: config.checkpointEvery,
      anchorFile: config.anchorFile,
    });
    for (const r of ledger.snapshotRejections) {
      if (!isTamperRejection(r.kind)) continue;
      warn?.(
        `warning: snapshot ${r.snapshot} was not used (${r.kind}): ${r.message}; the view was rebuilt from the events. Run keyledger verify.\n`,
      );
    }
    return {
      ledger,
      config,
      storeUrl,
      close: async () => {
        await ledger.close();
        await provider?.close();
        await store.close();
      },
    };
  } catch (error) {
    await provider?.close();
    await store.close();
    throw error;
  }
}
