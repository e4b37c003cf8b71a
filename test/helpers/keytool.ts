/**
 * Drives the JDK's keytool (and, where keytool cannot show something, a few lines of Java) so tests can
 * check our keystores against the real implementation. The CI machine has Java 17; when keytool is
 * missing these helpers throw a message saying so, because a skipped compatibility test proves nothing.
 *
 * Passwords travel through the environment (`-storepass:env`), never argv, and every child runs in a
 * UTF-8 locale with English messages so non-ASCII passwords reach Java intact and output parses the same
 * everywhere.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const KEYTOOL = process.env.KEYTOOL ?? 'keytool';
const JAVA = process.env.JAVA ?? 'java';
const PASSWORD_VAR = 'KEYLEDGER_TEST_STOREPASS';
const ENGLISH = ['-J-Duser.language=en', '-J-Duser.country=US'];
const TIMEOUT_MS = 120_000;

const MISSING_MESSAGE =
  'keytool (from a Java 17 JDK) is required by the PKCS#12 compatibility tests but was not found on PATH; ' +
  'install one (e.g. apt-get install openjdk-17-jdk-headless) or point KEYTOOL and JAVA at it';

export interface KeytoolOptions {
  /** Extra `-J-D…` system properties, e.g. to make keytool use its legacy algorithms. */
  readonly javaOptions?: readonly string[];
}

let keytoolFound: boolean | undefined;

export function hasKeytool(): boolean {
  if (keytoolFound === undefined) {
    const result = spawnSync(KEYTOOL, ['-help'], { encoding: 'utf8', timeout: TIMEOUT_MS });
    keytoolFound = result.error === undefined && result.status === 0;
  }
  return keytoolFound;
}

/** Throws a clear error when keytool is missing; call it first in any test that needs keytool. */
export function requireKeytool(): void {
  if (!hasKeytool()) throw new Error(MISSING_MESSAGE);
}

/** Runs `fn` in a fresh temporary directory that is removed afterwards, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-keytool-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function keytoolGenSecKey(
  storePath: string,
  alias: string,
  password: string,
  options: KeytoolOptions & { readonly keyalg?: string; readonly keysize?: number } = {},
): void {
  const keyalg = options.keyalg ?? 'AES';
  const keysize = options.keysize ?? (keyalg === 'AES' ? 256 : undefined);
  runKeytool(
    [
      ...(options.javaOptions ?? []),
      '-genseckey',
      '-keyalg',
      keyalg,
      ...(keysize === undefined ? [] : ['-keysize', String(keysize)]),
      '-storetype',
      'PKCS12',
      '-alias',
      alias,
      '-keystore',
      storePath,
      '-storepass:env',
      PASSWORD_VAR,
    ],
    password,
  );
}

/** A private key with a self-signed certificate: an entry the secret-key reader must skip. */
export function keytoolGenKeyPair(storePath: string, alias: string, password: string): void {
  runKeytool(
    [
      '-genkeypair',
      '-keyalg',
      'EC',
      '-groupname',
      'secp256r1',
      '-dname',
      'CN=keyledger test',
      '-validity',
      '1',
      '-storetype',
      'PKCS12',
      '-alias',
      alias,
      '-keystore',
      storePath,
      '-storepass:env',
      PASSWORD_VAR,
    ],
    password,
  );
}

export interface KeytoolEntry {
  readonly alias: string;
  /** As keytool prints it: SecretKeyEntry, PrivateKeyEntry, trustedCertEntry. */
  readonly type: string;
}

export function keytoolListEntries(storePath: string, password: string): KeytoolEntry[] {
  const output = runKeytool(
    ['-list', '-v', '-storetype', 'PKCS12', '-keystore', storePath, '-storepass:env', PASSWORD_VAR],
    password,
  );
  const entries: KeytoolEntry[] = [];
  let alias: string | undefined;
  for (const line of output.split('\n')) {
    const aliasMatch = /^Alias name: (.*)$/.exec(line);
    if (aliasMatch) alias = aliasMatch[1];
    const typeMatch = /^Entry type: (.*)$/.exec(line);
    if (typeMatch?.[1] !== undefined && alias !== undefined) {
      entries.push({ alias, type: typeMatch[1].trim() });
      alias = undefined;
    }
  }
  return entries;
}

/** The aliases `keytool -list` shows, sorted. */
export function keytoolList(storePath: string, password: string): string[] {
  return keytoolListEntries(storePath, password)
    .map((e) => e.alias)
    .sort();
}

/** Java loads every entry of `src` and writes it again into `dest`, re-encrypting each key. */
export function keytoolImportKeystore(
  src: string,
  dest: string,
  password: string,
  options: KeytoolOptions = {},
): void {
  runKeytool(
    [
      ...(options.javaOptions ?? []),
      '-importkeystore',
      '-noprompt',
      '-srckeystore',
      src,
      '-srcstoretype',
      'PKCS12',
      '-srcstorepass:env',
      PASSWORD_VAR,
      '-destkeystore',
      dest,
      '-deststoretype',
      'PKCS12',
      '-deststorepass:env',
      PASSWORD_VAR,
    ],
    password,
  );
}

export interface JavaSecretKey {
  readonly alias: string;
  readonly algorithm: string;
  readonly hex: string;
}

const PRINT_SECRET_KEYS = `
import java.io.FileInputStream;
import java.security.Key;
import java.security.KeyStore;
import java.util.Collections;
import java.util.HexFormat;

public class PrintSecretKeys {
  public static void main(String[] args) throws Exception {
    char[] password = System.getenv("${PASSWORD_VAR}").toCharArray();
    KeyStore store = KeyStore.getInstance("PKCS12");
    try (FileInputStream in = new FileInputStream(args[0])) {
      store.load(in, password);
    }
    for (String alias : Collections.list(store.aliases())) {
      if (!store.entryInstanceOf(alias, KeyStore.SecretKeyEntry.class)) continue;
      Key key = store.getKey(alias, password);
      System.out.println(alias + "\\t" + key.getAlgorithm() + "\\t" + HexFormat.of().formatHex(key.getEncoded()));
    }
  }
}
`;

/**
 * The secret keys of a store as Java's own KeyStore decrypts them, sorted by alias. keytool never prints
 * key bytes, so this is the only direct oracle for them.
 */
export async function javaSecretKeys(storePath: string, password: string): Promise<JavaSecretKey[]> {
  return withTempDir((dir) => {
    const source = join(dir, 'PrintSecretKeys.java');
    writeFileSync(source, PRINT_SECRET_KEYS);
    const output = run(JAVA, [source, storePath], password);
    return output
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => {
        const [alias = '', algorithm = '', hex = ''] = line.split('\t');
        return { alias, algorithm, hex };
      })
      .sort((a, b) => a.alias.localeCompare(b.alias));
  });
}

function runKeytool(args: readonly string[], password: string): string {
  return run(KEYTOOL, [...ENGLISH, ...args], password);
}

function run(command: string, args: readonly string[], password: string): string {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
    env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', [PASSWORD_VAR]: password },
  });
  if (result.error !== undefined) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? MISSING_MESSAGE : `${command} failed to start: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${result.status}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
  return result.stdout;
}
