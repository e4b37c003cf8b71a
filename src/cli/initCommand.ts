import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { KeyledgerError } from '../domain/errors.js';
import { loadConfig } from '../host/config.js';
import {
  configPathOf,
  type GlobalOptions,
  openLedger,
  storeIdentity,
  storeLocationOf,
} from '../host/openLedger.js';
import type { SystemKeyChange } from '../ledger/systemKeyLifecycle.js';
import type { Pkcs11InitSetup } from '../operations/operation.js';
import { writePkcs12SecretKeys } from '../providers/keystore/pkcs12.js';
import { type Pkcs11Config, resolvePkcs11Config } from '../providers/pkcs11/pkcs11Config.js';
import { Pkcs11KeyProvider } from '../providers/pkcs11/pkcs11KeyProvider.js';
import { SecretBytes } from '../secrets/secretBytes.js';
import { DEFAULT_STORE_URL, parseStoreUrl, redactStoreUrl } from '../store/storeUrl.js';

export const DEV_DIR = '.keyledger';
export const DEV_SYSTEM_KEY_ALIAS = 'keyledger-system-key';

export interface InitResult {
  readonly config: string;
  /** True when init wrote the config (false: it used an existing one). */
  readonly configCreated: boolean;
  readonly keystore: string | null;
  /** The PKCS#11 token holding the system key (pkcs11 provider), else null. */
  readonly token: string | null;
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
  pkcs11: Pkcs11InitSetup | null = null,
): Promise<InitResult> {
  const configPath = configPathOf(options, cwd);
  // A store URL given explicitly is checked before any file is written: bad input writes nothing.
  const explicit = storeLocationOf(options, cwd, env, null);
  if (explicit.url !== DEFAULT_STORE_URL) parseStoreUrl(explicit.url, explicit.baseDir);
  let keystorePath: string | null = null;
  const given = options.store !== undefined || Boolean(env.KEYLEDGER_STORE);
  const configCreated = !existsSync(configPath);
  let token: string | null = null;
  if (!configCreated && pkcs11 !== null) {
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      `${configPath} exists: its provider is configured there, not by init's options`,
      { config: configPath },
    );
  }
  if (pkcs11 !== null) {
    // The token's system key first: a wrong PIN or label leaves no config behind.
    const section = pkcs11Section(pkcs11, cwd);
    await ensureTokenSystemKey(resolvePkcs11Config(section, cwd));
    writePkcs11Setup(configPath, section, given ? explicit : null);
    token = pkcs11.tokenLabel;
  } else if (configCreated) {
    keystorePath = writeDevSetup(configPath, given ? explicit : null);
  } else {
    const existing = loadConfig(configPath).pkcs11;
    if (existing !== null) {
      await ensureTokenSystemKey(existing);
      token = existing.tokenLabel;
    }
  }
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
  return {
    config: configPath,
    configCreated,
    keystore: keystorePath,
    token,
    store: opened.storeUrl,
    systemKey,
  };
}

/** The config's `pkcs11` section from init's options; paths made absolute from the working directory. */
function pkcs11Section(setup: Pkcs11InitSetup, cwd: string): Record<string, string> {
  return {
    module: resolve(cwd, setup.module),
    tokenLabel: setup.tokenLabel,
    ...('env' in setup.pin ? { pinEnv: setup.pin.env } : { pinFile: resolve(cwd, setup.pin.file) }),
    ...(setup.stkLabel === undefined ? {} : { stkLabel: setup.stkLabel }),
  };
}

/** Creates the token's first system key when it has none; an existing one is used as it is. */
async function ensureTokenSystemKey(config: Pkcs11Config): Promise<void> {
  const provider = new Pkcs11KeyProvider(config);
  try {
    if ((await provider.systemKeyVersions()).length === 0) (await provider.createSystemKey()).dispose();
    (await provider.getSystemKey()).dispose();
  } finally {
    await provider.close();
  }
}

/** The config of a ledger whose system key lives in a PKCS#11 token: generated DEKs, no keystore. */
function writePkcs11Setup(
  configPath: string,
  section: Record<string, string>,
  given: { readonly url: string; readonly baseDir: string } | null,
): void {
  const devDir = join(dirname(configPath), DEV_DIR);
  mkdirSync(devDir, { recursive: true, mode: 0o700 });
  const config = { store: storeFor(configPath, devDir, given), provider: 'pkcs11', pkcs11: section };
  writeFileSync(resolve(configPath), `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
}

/**
 * The store a new config names. A store URL given to init (--store or KEYLEDGER_STORE) goes into
 * the config, so later commands use it without the variable, unless it holds credentials: those
 * stay out of files (the variable must then stay set; initialisedStore catches it if not).
 */
function storeFor(
  configPath: string,
  devDir: string,
  given: { readonly url: string; readonly baseDir: string } | null,
): string {
  const base = dirname(configPath);
  let store = `sqlite:${relative(base, join(devDir, 'ledger.db')) || '.'}`;
  if (given !== null && redactStoreUrl(given.url) === given.url) {
    const location = parseStoreUrl(given.url, given.baseDir);
    store = location.kind === 'sqlite' ? `sqlite:${location.path}` : given.url;
  }
  return store;
}

/**
 * Writes `initialisedStore` into the config, keeping everything else: later commands compare it
 * with the store they open (openLedger), so a forgotten KEYLEDGER_STORE is an error, not a new ledger.
 */
function recordInitialisedStore(configPath: string, store: string): void {
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(configPath, `${JSON.stringify({ ...config, initialisedStore: store }, null, 2)}\n`);
}

/** The development setup: a keystore with a random system key, its password file, the config. */
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
  const config = {
    store: storeFor(configPath, devDir, given),
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
