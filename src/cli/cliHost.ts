import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig, providerFor } from '../host/config.js';
import {
  configPathOf,
  type GlobalOptions,
  type OpenLedger,
  openLedger,
  storeLocationOf,
} from '../host/openLedger.js';
import { DEFAULT_PREFIX } from '../journal/streamNames.js';
import type { Ledger } from '../ledger/ledger.js';
import type {
  FileVerifier,
  OperationHost,
  Pkcs11InitSetup,
  Progress,
  StoreAccess,
} from '../operations/operation.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import { openEventStore } from '../store/storeUrl.js';
import type { CliIo } from './output.js';

/**
 * The commands about one scope: the CLI opens a point ledger for them (LedgerOptions.view), which
 * reads the system keys and that scope's streams instead of the whole view, so their cost does
 * not grow with the number of scopes. Every other command (list, metrics, whole-ledger as-of,
 * verify, destroy-due, rewrap, …) opens the whole view.
 */
export const POINT_OPERATIONS: ReadonlySet<string> = new Set([
  'show-key-status',
  'history',
  'scope-as-of',
  'enable-key-management',
  'disable-key-management',
  'disable-managed-key',
  'enable-managed-key',
  'rotate-managed-key',
  'refresh-managed-keys',
  'set-managed-key',
  'destroy-managed-key',
  'cancel-destroy',
  'resolve',
  'encrypt',
  'decrypt',
]);

/**
 * The CLI's OperationHost: one process, one command. What an operation asks for is opened on first
 * use and closed by `close()`, whatever happened.
 */
export class CliHost implements OperationHost {
  readonly #global: GlobalOptions;
  readonly #io: CliIo;
  readonly #abort = new AbortController();
  readonly #closers: (() => Promise<void>)[] = [];
  #ledger: Promise<OpenLedger> | null = null;
  #store: Promise<StoreAccess> | null = null;
  #onProgress: (report: Progress) => void = () => {};
  readonly actor: string | undefined;
  readonly reason: string | undefined;

  readonly #view: 'whole' | 'point';

  constructor(
    global: GlobalOptions & { readonly reason?: string },
    io: CliIo,
    { view = 'whole' }: { readonly view?: 'whole' | 'point' } = {},
  ) {
    this.#view = view;
    this.#global = global;
    this.#io = io;
    this.actor = global.actor;
    this.reason = global.reason;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Stops a long operation at its next safe point (Ctrl-C). */
  abort(): void {
    this.#abort.abort();
  }

  set onProgress(listener: (report: Progress) => void) {
    this.#onProgress = listener;
  }

  progress(report: Progress): void {
    this.#onProgress(report);
  }

  /** The ledger if it was opened (for a hint after a failure), else null. */
  async openedLedger(): Promise<Ledger | null> {
    if (this.#ledger === null) return null;
    try {
      return (await this.#ledger).ledger;
    } catch {
      return null;
    }
  }

  async ledger(): Promise<Ledger> {
    if (this.#ledger === null) {
      this.#ledger = openLedger(this.#global, this.#io.cwd, this.#io.env, {
        warn: this.#io.stderr,
        view: this.#view,
      });
      this.#ledger.then(
        (opened) => this.#closers.push(() => opened.close()),
        () => {},
      );
    }
    return (await this.#ledger).ledger;
  }

  store(): Promise<StoreAccess> {
    this.#store ??= this.#openStore();
    return this.#store;
  }

  async #openStore(): Promise<StoreAccess> {
    const config = loadConfig(configPathOf(this.#global, this.#io.cwd));
    const location = storeLocationOf(this.#global, this.#io.cwd, this.#io.env, config);
    const store: EventStore = openEventStore(location.url, location.baseDir);
    this.#closers.push(() => store.close());
    let provider: ManagedKeyProvider | null = null;
    return {
      store,
      prefix: config.prefix ?? DEFAULT_PREFIX,
      checkpointEvery: config.checkpointEvery,
      anchorFile: config.anchorFile,
      provider: () => {
        if (provider === null) {
          const made = providerFor(config);
          provider = made;
          this.#closers.push(() => made.close());
        }
        return provider;
      },
    };
  }

  readonly local = {
    // init's modules (keystore writer, pkcs11 setup) load only for init.
    init: async (pkcs11: Pkcs11InitSetup | null) =>
      (await import('./initCommand.js')).initLedger(this.#global, this.#io.cwd, this.#io.env, pkcs11),
    resolvePath: (path: string) => resolve(this.#io.cwd, path),
    fileVerifier: async (): Promise<FileVerifier | null> => {
      const configPath = configPathOf(this.#global, this.#io.cwd);
      // No config at the default place: an auditor without the keys still checks the rest.
      if (this.#global.config === undefined && !existsSync(configPath)) return null;
      const config = loadConfig(configPath);
      return {
        provider: providerFor(config),
        checkpointEvery: config.checkpointEvery,
        anchorFile: config.anchorFile,
      };
    },
  };

  /** Closes what was opened, newest first. */
  async close(): Promise<void> {
    if (this.#ledger !== null) await this.#ledger.catch(() => undefined);
    for (const close of this.#closers.reverse()) {
      try {
        await close();
      } catch {
        // Closing is best effort; the command's own outcome is what is reported.
      }
    }
    this.#closers.length = 0;
  }
}
