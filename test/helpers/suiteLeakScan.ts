import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { unwrapDek } from '../../src/crypto/dekWrap.js';
import type { Custodian, MetadataHash, Namespace } from '../../src/domain/identities.js';
import { readPkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { formsOf, type Haystack } from './secretScan.js';

/**
 * The leak scan over the ledgers the test suite itself writes (issue 15, part 5): given a test's
 * temporary directory, find the keystores in it (opened with the suite's known test passwords and
 * any password file in the directory), take every secret entry's bytes, unwrap every DEK the
 * directory's events hold under those keys (KeyMaterialWrapped data found in any file: the sqlite
 * file and its WAL, audit exports), and search every other file for every key in every form
 * (secretScan.ts). Loaded into test processes by suiteLeakScanHook.ts.
 */

/** The passwords the suite's keystores use (grep test/ for PASSWORD / password =). */
export const KNOWN_TEST_PASSWORDS: readonly string[] = [
  'test-password',
  'faults-Test1',
  'crash-Test1',
  'race-Test1',
  'keyprovider-Test-1',
  'generated-Test-1',
  'changeit-Test1',
  'pässwörd-€-🔑',
  'system-key-alias-test',
  'hbase-store-secret',
  'keytool-pass',
  'changeit',
];

/** Files larger than this are not read (no ledger a test writes comes near it). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** A keystore is small; larger files are not tried as one. */
const MAX_KEYSTORE_BYTES = 1024 * 1024;
/** KeyMaterialWrapped data unwrapped per directory at most (each try is one AES-GCM per key). */
const MAX_WRAPPED = 5_000;

export interface DirectoryScan {
  readonly dir: string;
  readonly files: number;
  readonly bytes: number;
  readonly keystores: number;
  /** Secret entries of the keystores (STKs, managed and imported keys). */
  readonly entries: number;
  /** DEKs unwrapped from the events under those entries. */
  readonly unwrapped: number;
  readonly keys: number;
  readonly searches: number;
  readonly hits: readonly string[];
}

function walk(dir: string, out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(path);
    } catch {
      continue;
    }
    if (stat.isDirectory()) walk(path, out);
    else if (stat.isFile() && stat.size <= MAX_FILE_BYTES) out.push(path);
  }
}

function readQuietly(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

/** Whether the file starts as a DER SEQUENCE, as a PKCS#12 store does (cheap filter before PBKDF2). */
function mayBePkcs12(path: string): boolean {
  const head = Buffer.alloc(2);
  try {
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 2, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  return head[0] === 0x30 && (head[1] === 0x80 || head[1] === 0x81 || head[1] === 0x82 || head[1] === 0x83);
}

/** KeyMaterialWrapped data (a JSON object with the binding and `wrapped`) found in raw bytes. */
function wrappedMaterialIn(text: string, found: Map<string, Record<string, string>>): void {
  const pattern = /"wrapped":"([A-Za-z0-9+/]{70,100}={0,2})"/g;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const wrapped = match[1] as string;
    if (found.has(wrapped) || found.size >= MAX_WRAPPED) continue;
    const start = text.lastIndexOf('{', match.index);
    const end = text.indexOf('}', match.index);
    if (start < 0 || end < 0 || match.index - start > 2000) continue;
    try {
      const data = JSON.parse(text.slice(start, end + 1)) as Record<string, unknown>;
      const fields = ['custodian', 'namespace', 'metadataHash', 'stkIdentity', 'wrapped'] as const;
      if (fields.every((f) => typeof data[f] === 'string'))
        found.set(wrapped, data as Record<string, string>);
    } catch {
      // Not a whole JSON object in these bytes (a row split across pages): skipped.
    }
  }
}

/** Scans one directory; `passwords` are tried on every file that may be a keystore. */
export function scanDirectory(
  dir: string,
  passwords: readonly string[] = KNOWN_TEST_PASSWORDS,
  known: ReadonlyMap<string, Buffer> = new Map(),
): DirectoryScan {
  const paths: string[] = [];
  walk(dir, paths);
  // The directory's own password files first: each wrong try costs the store's PBKDF2 iterations.
  const candidates = new Set<string>();
  for (const path of paths) {
    const name = relative(dir, path).toLowerCase();
    if (!name.includes('pass')) continue;
    const text = readQuietly(path);
    if (text !== null && text.length <= 256) candidates.add(text.toString('utf8').replace(/\r?\n$/, ''));
  }
  for (const password of passwords) candidates.add(password);
  const keys = new Map<string, Buffer>(known);
  const keystores = new Set<string>();
  let entries = 0;
  for (const path of paths) {
    if (!mayBePkcs12(path) || statSync(path, { throwIfNoEntry: false })?.size === undefined) continue;
    const bytes = readQuietly(path);
    if (bytes === null || bytes.length > MAX_KEYSTORE_BYTES) continue;
    for (const password of candidates) {
      try {
        const read = readPkcs12SecretKeys(bytes, password);
        keystores.add(path);
        for (const entry of read) {
          keys.set(`${relative(dir, path)}:${entry.alias}`, Buffer.from(entry.key.expose()));
          entry.key.zero();
          entries++;
        }
        break;
      } catch {
        // Not this password, or not a keystore.
      }
    }
  }
  const haystacks: Haystack[] = [];
  let bytes = 0;
  for (const path of paths) {
    if (keystores.has(path)) continue;
    const content = readQuietly(path);
    if (content === null) continue;
    bytes += content.length;
    haystacks.push({ where: relative(dir, path), bytes: content });
  }
  // Every DEK the events hold under a key found here.
  const wrapped = new Map<string, Record<string, string>>();
  for (const { bytes: content } of haystacks) wrappedMaterialIn(content.toString('latin1'), wrapped);
  const stks = [...keys.values()].filter((k) => k.length === 32);
  let unwrapped = 0;
  for (const data of wrapped.values()) {
    for (const stk of stks) {
      try {
        const dek = unwrapDek(
          SecretBytes.copyOf(stk),
          data.wrapped as string,
          {
            custodian: data.custodian as Custodian,
            namespace: data.namespace as Namespace,
            metadataHash: data.metadataHash as MetadataHash,
            stkIdentity: data.stkIdentity as string,
          },
          null,
        );
        keys.set(`dek ${data.keyId ?? data.metadataHash}`, Buffer.from(dek.expose()));
        dek.zero();
        unwrapped++;
        break;
      } catch {
        // Under another system key.
      }
    }
  }
  const { scanned, hits } = findKeys(keys, haystacks);
  return {
    dir,
    files: paths.length,
    bytes,
    keystores: keystores.size,
    entries,
    unwrapped,
    keys: keys.size,
    searches: scanned,
    hits,
  };
}

/**
 * The search of secretScan.ts (every key as raw, hex, HEX, base64 unpadded and base64url, a
 * substring of any haystack), in one pass per haystack and form instead of one per needle: a test
 * process may know a thousand keys and a directory hold megabytes. Raw keys are looked up by
 * their first four bytes at every offset; the text forms by every window of their length inside
 * runs of the form's alphabet (hex matched case-insensitively, which covers hex and HEX).
 * `scanned` counts what the one-needle-at-a-time search would: keys x 5 forms x haystacks.
 */
export function findKeys(
  keys: ReadonlyMap<string, Buffer>,
  haystacks: readonly Haystack[],
): { scanned: number; hits: string[] } {
  const raw = new Map<number, [string, Buffer][]>();
  const hex = new Map<string, string>();
  const b64 = new Map<string, string[]>();
  const hexLengths = new Set<number>();
  const b64Lengths = new Set<number>();
  for (const [name, key] of keys) {
    if (key.length < 4) continue;
    const head = key.readUInt32LE(0);
    raw.set(head, [...(raw.get(head) ?? []), [name, key]]);
    const text = key.toString('hex');
    hex.set(text, name);
    hexLengths.add(text.length);
    for (const { form, needle } of formsOf(key)) {
      if (form !== 'base64' && form !== 'base64url') continue;
      const value = needle.toString('latin1');
      b64.set(value, [...(b64.get(value) ?? []), `${name} as ${form}`]);
      b64Lengths.add(value.length);
    }
  }
  const hits = new Set<string>();
  for (const { where, bytes } of haystacks) {
    for (let i = 0; i + 4 <= bytes.length; i++) {
      const candidates = raw.get(bytes.readUInt32LE(i));
      if (candidates === undefined) continue;
      for (const [name, key] of candidates)
        if (bytes.subarray(i, i + key.length).equals(key)) hits.add(`${name} as raw in ${where}`);
    }
    const text = bytes.toString('latin1');
    windows(text, /[0-9a-fA-F]{32,}/g, hexLengths, (window) => {
      const name = hex.get(window.toLowerCase());
      if (name === undefined) return;
      const upper = window === window.toUpperCase() && window !== window.toLowerCase();
      hits.add(`${name} as ${upper ? 'HEX' : 'hex'} in ${where}`);
    });
    windows(text, /[A-Za-z0-9+/_-]{16,}/g, b64Lengths, (window) => {
      for (const name of b64.get(window) ?? []) hits.add(`${name} in ${where}`);
    });
  }
  return { scanned: keys.size * 5 * haystacks.length, hits: [...hits] };
}

/** Calls `visit` with every window of each length in `lengths` inside every run `pattern` finds. */
function windows(
  text: string,
  pattern: RegExp,
  lengths: ReadonlySet<number>,
  visit: (w: string) => void,
): void {
  if (lengths.size === 0) return;
  for (let run = pattern.exec(text); run !== null; run = pattern.exec(text)) {
    const value = run[0];
    for (const length of lengths)
      for (let i = 0; i + length <= value.length; i++) visit(value.slice(i, i + length));
  }
}
