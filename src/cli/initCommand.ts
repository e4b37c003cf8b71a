import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { KeyledgerError } from '../domain/errors.js';
import type { SystemKeyChange } from '../ledger/systemKeyLifecycle.js';
import { writePkcs12SecretKeys } from '../providers/keystore/pkcs12.js';
import { SecretBytes } from '../secrets/secretBytes.js';
import { DEFAULT_STORE_URL, parseStoreUrl } from '../store/storeUrl.js';
import { configPathOf, type GlobalOptions, openLedger, storeLocationOf } from './openLedger.js';

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
  if (!existsSync(configPath)) keystorePath = writeDevSetup(configPath);
  const opened = await openLedger(options, cwd, env);
  try {
    if (opened.ledger.isInitialised) {
      throw new KeyledgerError('ERR_LEDGER_ALREADY_INITIALISED', 'this ledger is already initialised', {
        config: configPath,
      });
    }
    const systemKey = await opened.ledger.initialise({ reason: 'keyledger init' });
    return { config: configPath, keystore: keystorePath, store: opened.storeUrl, systemKey };
  } finally {
    await opened.close();
  }
}

function writeDevSetup(configPath: string): string {
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
    store: `sqlite:${rel(join(devDir, 'ledger.db'))}`,
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
