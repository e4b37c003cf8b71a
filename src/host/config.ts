import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import { GRACE_PERIOD_FORMAT, parseGracePeriod } from '../operations/gracePeriod.js';
import { GeneratedKeyProvider } from '../providers/generated/generatedKeyProvider.js';
import { type KeystoreConfig, resolveKeystoreConfig } from '../providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../providers/keystore/keystoreKeyProvider.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import { type Pkcs11Config, resolvePkcs11Config } from '../providers/pkcs11/pkcs11Config.js';
import { Pkcs11KeyProvider } from '../providers/pkcs11/pkcs11KeyProvider.js';
import { resolveServerConfig, type ServerConfig, serverSectionSchema } from './serverConfig.js';

export const DEFAULT_CONFIG_FILE = 'keyledger.config.json';

/**
 * keyledger.config.json. `provider`: where DEKs come from — `keystore` (the keys configured per
 * scope in the keystore, as HBase's keystore provider) or `generated` (fresh random DEKs), both
 * with the keystore's `systemKeyAlias` as system key; or `pkcs11`: generated DEKs under system keys
 * that live in a PKCS#11 token (the `pkcs11` section; no keystore). docs/configuration.md.
 */
const configSchema = z.strictObject({
  $schema: z.string().optional(),
  store: z.string().min(1).optional(),
  prefix: z.string().optional(),
  provider: z.enum(['keystore', 'generated', 'pkcs11']),
  /**
   * Ask the provider about scopes the ledger does not know when resolving keys. Defaults to true
   * for the keystore provider (HBase's default) and false for the generated one, which would
   * otherwise mint a key for every candidate namespace it is asked about.
   */
  dynamicLookup: z.boolean().optional(),
  /** Default grace period of `destroy-managed-key`: `<n>s|m|h|d|w`, 0 to 10 years (default 7d). */
  destroyGracePeriod: z
    .string()
    .transform((value, ctx) => {
      const ms = parseGracePeriod(value);
      if (ms !== null) return ms;
      ctx.issues.push({ code: 'custom', input: value, message: GRACE_PERIOD_FORMAT });
      return z.NEVER;
    })
    .optional(),
  /** Append a tamper-evidence checkpoint after this many ledger events (default 1000; 0: only on request). */
  checkpointEvery: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /**
   * Written by `keyledger init`: the store it initialised (credentials redacted), so a later command
   * that opens an empty store instead (a forgotten KEYLEDGER_STORE) fails instead of starting afresh.
   */
  initialisedStore: z.string().optional(),
  /** The rollback anchor file (another volume or machine): every checkpoint is appended there. */
  anchorFile: z.string().min(1).optional(),
  keystore: z.unknown().optional(),
  pkcs11: z.unknown().optional(),
  /** `keyledger serve` (src/host/serverConfig.ts). */
  server: serverSectionSchema.optional(),
});

export interface LedgerConfig {
  readonly file: string;
  /** The config file's folder: relative paths in the file (store included) are taken from here. */
  readonly baseDir: string;
  readonly store: string | undefined;
  readonly prefix: string | undefined;
  readonly provider: 'keystore' | 'generated' | 'pkcs11';
  readonly dynamicLookup: boolean;
  /** From `destroyGracePeriod`; undefined: the ledger's default (7 days). */
  readonly destroyGracePeriodMs: number | undefined;
  /** From `checkpointEvery`; undefined: the ledger's default (1000). */
  readonly checkpointEvery: number | undefined;
  /** The store `init` initialised with this config (docs/configuration.md); undefined before init. */
  readonly initialisedStore: string | undefined;
  /** From `anchorFile`, resolved against the config file's folder; undefined: none. */
  readonly anchorFile: string | undefined;
  /** The keystore section; null for the pkcs11 provider, which has none. */
  readonly keystore: KeystoreConfig | null;
  /** The pkcs11 section; null unless the provider is pkcs11. */
  readonly pkcs11: Pkcs11Config | null;
  /** The `server` section with its defaults (used by `keyledger serve` only). */
  readonly server: ServerConfig;
}

export function loadConfig(file: string): LedgerConfig {
  if (!existsSync(file)) {
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      `no config file ${file}; run \`keyledger init\` or pass --config`,
      {
        file,
      },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new KeyledgerError('ERR_INVALID_CONFIG', `${file} is not valid JSON`, { file }, { cause: error });
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    throw new KeyledgerError('ERR_INVALID_CONFIG', `${file}: ${z.prettifyError(parsed.error)}`, { file });
  }
  const baseDir = dirname(resolve(file));
  return {
    file,
    baseDir,
    store: parsed.data.store,
    prefix: parsed.data.prefix,
    provider: parsed.data.provider,
    dynamicLookup: parsed.data.dynamicLookup ?? parsed.data.provider === 'keystore',
    destroyGracePeriodMs: parsed.data.destroyGracePeriod,
    checkpointEvery: parsed.data.checkpointEvery,
    initialisedStore: parsed.data.initialisedStore,
    anchorFile: parsed.data.anchorFile === undefined ? undefined : resolve(baseDir, parsed.data.anchorFile),
    keystore:
      parsed.data.provider === 'pkcs11' && parsed.data.keystore === undefined
        ? null
        : resolveKeystoreConfig(parsed.data.keystore, baseDir),
    pkcs11: parsed.data.provider === 'pkcs11' ? resolvePkcs11Config(parsed.data.pkcs11, baseDir) : null,
    server: resolveServerConfig(parsed.data.server, baseDir),
  };
}

export function providerFor(config: LedgerConfig): ManagedKeyProvider {
  if (config.pkcs11 !== null) {
    return new GeneratedKeyProvider({ systemKeys: new Pkcs11KeyProvider(config.pkcs11) });
  }
  if (config.keystore === null) throw new TypeError('a keystore provider needs its keystore section');
  const keystore = new KeystoreKeyProvider(config.keystore);
  return config.provider === 'keystore' ? keystore : new GeneratedKeyProvider({ systemKeys: keystore });
}
