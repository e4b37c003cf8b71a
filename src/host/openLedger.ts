import { resolve } from 'node:path';
import { isTamperRejection } from '../audit/snapshotSeal.js';
import { KeyledgerError } from '../domain/errors.js';
import { Ledger } from '../ledger/ledger.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import { DEFAULT_STORE_URL, openEventStore, parseStoreUrl, redactStoreUrl } from '../store/storeUrl.js';
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
  /** The store the ledger runs on (a server reads its head for readiness); closed by close(). */
  readonly store: EventStore;
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

/**
 * A store as `init` records it and later commands compare it: a sqlite file by its absolute path,
 * any other URL with its credentials replaced by `***`.
 */
export function storeIdentity(location: { readonly url: string; readonly baseDir: string }): string {
  const parsed = parseStoreUrl(location.url, location.baseDir);
  return parsed.kind === 'sqlite' ? `sqlite:${parsed.path}` : redactStoreUrl(location.url);
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
  {
    purpose = 'use',
    warn,
    view = 'whole',
  }: {
    purpose?: 'use' | 'init';
    warn?: (text: string) => void;
    /** `point` for a one-shot command about one scope (LedgerOptions.view); default `whole`. */
    view?: 'whole' | 'point';
  } = {},
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
      view,
    });
    if (purpose === 'use' && !ledger.isInitialised && config.initialisedStore !== undefined) {
      await ledger.close();
      throw elsewhere(config, storeIdentity(location));
    }
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
      store,
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

/**
 * The store in use holds no ledger, but `init` recorded one for this config: most likely the store
 * URL was given to init (KEYLEDGER_STORE) and not to this command. Running init again would make a
 * second, empty ledger, so the error says where the first one is instead.
 */
function elsewhere(config: LedgerConfig, inUse: string): KeyledgerError {
  const same = config.initialisedStore === inUse;
  return new KeyledgerError(
    'ERR_LEDGER_NOT_INITIALISED',
    same
      ? `${config.file} records that init initialised the ledger in ${inUse}, but that store holds no ledger now (deleted or replaced?)`
      : `the store in use, ${inUse}, holds no ledger, but ${config.file} records that init initialised the ledger in ${config.initialisedStore}: pass --store or set KEYLEDGER_STORE to that store (or put it in the config's store)`,
    {},
  );
}
