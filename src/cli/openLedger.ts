import { resolve } from 'node:path';
import { Ledger } from '../ledger/ledger.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import { DEFAULT_STORE_URL, openEventStore } from '../store/storeUrl.js';
import { DEFAULT_CONFIG_FILE, type LedgerConfig, loadConfig, providerFor } from './config.js';

export interface GlobalOptions {
  readonly store?: string;
  readonly config?: string;
  readonly actor?: string;
}

export interface OpenLedger {
  readonly ledger: Ledger;
  readonly config: LedgerConfig;
  readonly storeUrl: string;
  close(): Promise<void>;
}

/** Store URL precedence: --store, then KEYLEDGER_STORE, then the config file, then the default. */
export function storeUrlOf(
  options: GlobalOptions,
  env: Readonly<Record<string, string | undefined>>,
  config: LedgerConfig | null,
): string {
  // An empty KEYLEDGER_STORE counts as unset, as shells make it easy to export one by accident.
  return options.store ?? (env.KEYLEDGER_STORE || undefined) ?? config?.store ?? DEFAULT_STORE_URL;
}

export function configPathOf(options: GlobalOptions, cwd: string): string {
  return resolve(cwd, options.config ?? DEFAULT_CONFIG_FILE);
}

/** Opens store, provider and ledger as the CLI's options say; close() releases all three. */
export async function openLedger(
  options: GlobalOptions,
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<OpenLedger> {
  const config = loadConfig(configPathOf(options, cwd));
  const storeUrl = storeUrlOf(options, env, config);
  const store: EventStore = openEventStore(storeUrl, cwd);
  let provider: ManagedKeyProvider | null = null;
  try {
    provider = providerFor(config);
    const ledger = await Ledger.open({
      store,
      provider,
      prefix: config.prefix,
      actor: options.actor ?? env.KEYLEDGER_ACTOR,
    });
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
