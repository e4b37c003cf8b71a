import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { type ErrorDetailsOf, KeyledgerError } from '../../domain/errors.js';
import { keyScope, type ScopeKey, scopeKey } from '../../domain/identities.js';

const HBASE_PREFIX = 'hbase.crypto.managed_key_store.';
const HBASE_SYSTEM_KEY = `${HBASE_PREFIX}system.key.name`;

/**
 * Where a keystore is and which of its keys serve which scope. Scopes are given either in the
 * structured form (`scopes`) or as HBase properties copied from hbase-site.xml (`properties`):
 * `hbase.crypto.managed_key_store.system.key.name`, and per scope
 * `hbase.crypto.managed_key_store.cust.<custodian-b64>.<namespace>.alias` / `.active`.
 * The password is never in the file: it comes from an environment variable or a file.
 */
export const keystoreConfigSchema = z.strictObject({
  path: z.string().min(1),
  password: z.union([
    z.strictObject({ env: z.string().min(1) }),
    z.strictObject({ file: z.string().min(1) }),
  ]),
  systemKeyAlias: z.string().min(1).optional(),
  /**
   * Aliases that were the system key before `systemKeyAlias` (oldest first is fine; order is not
   * used). Only these and `systemKeyAlias` are ever served as a system key: data recorded under an
   * earlier STK stays readable after the alias changes, and no other alias can be.
   */
  previousSystemKeyAliases: z.array(z.string().min(1)).default([]),
  scopes: z
    .record(z.string(), z.strictObject({ alias: z.string().min(1), active: z.boolean().default(true) }))
    .default({}),
  properties: z.record(z.string(), z.string()).default({}),
});
export type KeystoreConfigInput = z.input<typeof keystoreConfigSchema>;

export interface ScopeAlias {
  /** Lower-cased, as keytool stores aliases. */
  readonly alias: string;
  readonly active: boolean;
}

export type PasswordSource = { readonly env: string } | { readonly file: string };

export interface KeystoreConfig {
  readonly path: string;
  readonly password: PasswordSource;
  readonly systemKeyAlias: string;
  /** Earlier system-key aliases, lower-cased; with systemKeyAlias, the only aliases served as STKs. */
  readonly previousSystemKeyAliases: readonly string[];
  readonly scopes: ReadonlyMap<ScopeKey, ScopeAlias>;
}

function invalid(message: string, details: ErrorDetailsOf<'ERR_INVALID_CONFIG'> = {}): never {
  throw new KeyledgerError('ERR_INVALID_CONFIG', message, details);
}

/** Validates the keystore section of a config; relative paths are taken from `baseDir`. */
export function resolveKeystoreConfig(input: unknown, baseDir: string): KeystoreConfig {
  const parsed = keystoreConfigSchema.safeParse(input);
  if (!parsed.success) invalid(`keystore config: ${z.prettifyError(parsed.error)}`);
  const config = parsed.data;
  const scopes = new Map<ScopeKey, ScopeAlias>();
  let systemKeyAlias = config.systemKeyAlias;

  for (const [scope, entry] of Object.entries(config.scopes)) {
    const colon = scope.indexOf(':');
    const key = scopeKeyOrInvalid(
      colon === -1 ? scope : scope.slice(0, colon),
      colon === -1 ? '*' : scope.slice(colon + 1),
    );
    scopes.set(key, { alias: entry.alias.toLowerCase(), active: entry.active });
  }

  const fromProperties = new Map<ScopeKey, { alias?: string; active?: boolean }>();
  for (const [name, value] of Object.entries(config.properties)) {
    if (name === HBASE_SYSTEM_KEY) {
      systemKeyAlias = value;
      continue;
    }
    const match = /^hbase\.crypto\.managed_key_store\.cust\.([^.]+)\.(.+)\.(alias|active)$/.exec(name);
    if (match === null) invalid(`unknown keystore property ${name}`, { property: name });
    const [, custodian = '', namespace = '', field] = match;
    const key = scopeKeyOrInvalid(custodian, namespace);
    const entry = fromProperties.get(key) ?? {};
    if (field === 'alias') entry.alias = value.toLowerCase();
    else {
      // Hadoop's Configuration.getBoolean trims and ignores case; values copied from hbase-site.xml do too.
      const flag = value.trim().toLowerCase();
      if (flag !== 'true' && flag !== 'false') invalid(`${name} must be true or false`, { property: name });
      entry.active = flag === 'true';
    }
    fromProperties.set(key, entry);
  }
  for (const [key, entry] of fromProperties) {
    if (entry.alias === undefined) invalid(`an .active property for ${key} has no .alias`, { scope: key });
    scopes.set(key, { alias: entry.alias, active: entry.active ?? true });
  }

  if (systemKeyAlias === undefined) {
    invalid(`keystore config needs systemKeyAlias (or the property ${HBASE_SYSTEM_KEY})`);
  }
  const current = systemKeyAlias.toLowerCase();
  const previous = [...new Set(config.previousSystemKeyAliases.map((a) => a.toLowerCase()))].filter(
    (alias) => alias !== current,
  );
  // A system key wraps every DEK; serving it as a DEK too would expose it to data encryption, and
  // serving a DEK as a system key would wrap one tenant's keys under another's.
  for (const [key, entry] of scopes) {
    if (entry.alias === current || previous.includes(entry.alias)) {
      invalid(`scope ${key} is configured with the system key alias ${entry.alias}`, { scope: key });
    }
  }
  const password: PasswordSource =
    'env' in config.password ? config.password : { file: resolve(baseDir, config.password.file) };
  return {
    path: resolve(baseDir, config.path),
    password,
    systemKeyAlias: current,
    previousSystemKeyAliases: previous,
    scopes,
  };
}

function scopeKeyOrInvalid(custodian: string, namespace: string): ScopeKey {
  try {
    return scopeKey(keyScope(custodian, namespace));
  } catch (error) {
    return invalid(
      `invalid scope ${custodian}:${namespace} in keystore config: ${(error as Error).message}`,
      {
        scope: `${custodian}:${namespace}`,
      },
    );
  }
}

/** Reads the password from its source at the moment it is needed; it is never logged or kept. */
export function readPassword(source: PasswordSource): string {
  if ('env' in source) {
    const value = process.env[source.env];
    if (value === undefined || value === '') {
      throw new KeyledgerError(
        'ERR_KEYSTORE_PASSWORD',
        `keystore password variable ${source.env} is not set`,
        {
          env: source.env,
        },
      );
    }
    return value;
  }
  assertPrivate(source.file);
  try {
    return readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new KeyledgerError(
      'ERR_KEYSTORE_PASSWORD',
      `cannot read the keystore password file ${source.file}`,
      { file: source.file },
      { cause: error },
    );
  }
}

/**
 * A password file others can read gives them the keystore, and with it every key: refused (as ssh
 * refuses such a private key) rather than used. POSIX modes only; Windows ACLs are not checked.
 */
function assertPrivate(file: string): void {
  if (process.platform === 'win32') return;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return; // A missing file is reported by the read, as ERR_KEYSTORE_PASSWORD.
  }
  if ((mode & 0o077) === 0) return;
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  throw new KeyledgerError(
    'ERR_INVALID_CONFIG',
    `keystore password file ${file} is accessible by group or others (mode ${octal}); run chmod 600 on it`,
    { file, mode: octal },
  );
}
