import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { KeyledgerError } from '../domain/errors.js';
import {
  configPathOf,
  type GlobalOptions,
  openLedger,
  storeIdentity,
  storeLocationOf,
} from '../host/openLedger.js';
import type { SystemKeyChange } from '../ledger/systemKeyLifecycle.js';
import { writePkcs12SecretKeys } from '../providers/keystore/pkcs12.js';
import { SecretBytes } from '../secrets/secretBytes.js';
import { DEFAULT_STORE_URL, parseStoreUrl, redactStoreUrl } from '../store/storeUrl.js';

export const DEV_DIR = '.keyledger';
export const DEV_SYSTEM_KEY_ALIAS = 'keyledger-system-key';

export interface InitResult {
  readonly config: string;
  readonly keystore: string | null;
  readonly store: string;
  readonly systemKey: SystemKeyChange;
}

/**
 * `keyledger init`: a ready-to-use development setup in one step. If no config file exists it
 * writes one, with a new PKCS#12 keystore holding a random 256-bit system key (readable by
 * keytool) and a random keystore password in a 0600 file beside it; then it records the system key
 * in the ledger. An existing keystore is never overwritten.
 */
export async function initLedger(
  options: GlobalOptions,
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<InitResult> {
  const configPath = configPathOf(options, cwd);
  // A store URL given explicitly is checked before any file is written: bad input writes nothing.
  const explicit = storeLocationOf(options, cwd, env, null);
  if (explicit.url !== DEFAULT_STORE_URL) parseStoreUrl(explicit.url, explicit.baseDir);
  let keystorePath: string | null = null;
  const given = options.store !== undefined || Boolean(env.KEYLEDGER_STORE);
  if (!existsSync(configPath)) keystorePath = writeDevSetup(configPath, given ? explicit : null);
  const opened = await openLedger(options, cwd, env, { purpose: 'init' });
  let systemKey: SystemKeyChange;
  try {
    if (opened.ledger.isInitialised) {
      throw new KeyledgerError('ERR_LEDGER_ALREADY_INITIALISED', 'this ledger is already initialised', {
        config: configPath,
      });
    }
    systemKey = await opened.ledger.initialise({ reason: 'keyledger init' });
  } finally {
    await opened.close();
  }
  recordInitialisedStore(configPath, storeIdentity(storeLocationOf(options, cwd, env, opened.config)));
  return { config: configPath, keystore: keystorePath, store: opened.storeUrl, systemKey };
}

/**
 * Writes `initialisedStore` into the config, keeping everything else: later commands compare it
 * with the store they open (openLedger), so a forgotten KEYLEDGER_STORE is an error, not a new ledger.
 */
function recordInitialisedStore(configPath: string, store: string): void {
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(configPath, `${JSON.stringify({ ...config, initialisedStore: store }, null, 2)}\n`);
}

/**
 * The development setup. A store URL given to init (--store or KEYLEDGER_STORE) goes into the new
 * config's `store`, so later commands use it without the variable, unless it holds credentials:
 * those stay out of files (the variable must then stay set; initialisedStore catches it if not).
 */
function writeDevSetup(
  configPath: string,
  given: { readonly url: string; readonly baseDir: string } | null,
): string {
  const base = dirname(configPath);
  const devDir = join(base, DEV_DIR);
  const keystorePath = join(devDir, 'keystore.p12');
  const passwordPath = join(devDir, 'keystore.pass');
  if (existsSync(keystorePath)) {
    throw new KeyledgerError(
      'ERR_LEDGER_ALREADY_INITIALISED',
      `${keystorePath} exists but ${configPath} does not; refusing to overwrite a keystore`,
      { keystore: keystorePath },
    );
  }
  mkdirSync(devDir, { recursive: true, mode: 0o700 });
  const password = randomBytes(24).toString('base64url');
  writeFileSync(passwordPath, `${password}\n`, { mode: 0o600, flag: 'wx' });
  const systemKey = SecretBytes.adopt(randomBytes(32));
  try {
    const p12 = writePkcs12SecretKeys([{ alias: DEV_SYSTEM_KEY_ALIAS, key: systemKey }], password);
    writeFileSync(keystorePath, p12, { mode: 0o600, flag: 'wx' });
    chmodSync(keystorePath, 0o600);
  } finally {
    systemKey.zero();
  }
  const rel = (p: string) => relative(base, p) || '.';
  let store = `sqlite:${rel(join(devDir, 'ledger.db'))}`;
  if (given !== null && redactStoreUrl(given.url) === given.url) {
    const location = parseStoreUrl(given.url, given.baseDir);
    store = location.kind === 'sqlite' ? `sqlite:${location.path}` : given.url;
  }
  const config = {
    store,
    provider: 'generated',
    keystore: {
      path: rel(keystorePath),
      password: { file: rel(passwordPath) },
      systemKeyAlias: DEV_SYSTEM_KEY_ALIAS,
      scopes: {},
    },
  };
  writeFileSync(resolve(configPath), `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
  return keystorePath;
}
