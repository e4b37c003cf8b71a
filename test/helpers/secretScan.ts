import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPkcs12SecretKeys, writePkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

/**
 * The leak scan of issue 15, part 5, shared by the CLI and server scenarios (secretLeaks.test.ts,
 * serverSecretLeaks.test.ts): keys the test knows, the forms a key could take in text or bytes, and
 * the search of every output for every form.
 */

/** Something a secret must not appear in: an output, a file, a log. */
export interface Haystack {
  readonly where: string;
  readonly bytes: Buffer;
}

/** One form of one secret, as bytes to search for. */
export interface Needle {
  readonly name: string;
  readonly needle: Buffer;
}

/** Every form a key could take in text or bytes: raw, hex, HEX, base64 (unpadded), base64url. */
export function formsOf(key: Buffer): { form: string; needle: Buffer }[] {
  return [
    { form: 'raw', needle: key },
    { form: 'hex', needle: Buffer.from(key.toString('hex')) },
    { form: 'HEX', needle: Buffer.from(key.toString('hex').toUpperCase()) },
    { form: 'base64', needle: Buffer.from(key.toString('base64').replace(/=+$/, '')) },
    { form: 'base64url', needle: Buffer.from(key.toString('base64url')) },
  ];
}

/** Every form of every named key, each named "<key> as <form>". */
export function keyNeedles(secrets: ReadonlyMap<string, Buffer>): Needle[] {
  return [...secrets].flatMap(([name, key]) =>
    formsOf(key).map((f) => ({ name: `${name} as ${f.form}`, needle: f.needle })),
  );
}

/** Searches every haystack for every needle; returns the number of searches and "<needle> in <where>" per hit. */
export function scanForLeaks(
  needles: readonly Needle[],
  haystacks: readonly Haystack[],
): { scanned: number; hits: string[] } {
  let scanned = 0;
  const hits: string[] = [];
  for (const { name, needle } of needles) {
    for (const { where, bytes } of haystacks) {
      scanned += 1;
      if (bytes.includes(needle)) hits.push(`${name} in ${where}`);
    }
  }
  return { scanned, hits };
}

/**
 * Rewrites the keystore `keyledger init` made in `dir` (at `keystoreFile`, relative to `dir`) with
 * its system key and three scope keys the test knows (orders-v1, orders-v2, billing-v1); returns
 * every key by name, the system key as "system key <alias>".
 */
export function plantKnownKeys(dir: string, keystoreFile: string): Map<string, Buffer> {
  const keystorePath = join(dir, keystoreFile);
  const password = readFileSync(join(dir, '.keyledger', 'keystore.pass'), 'utf8').replace(/\n$/, '');
  const [stk] = readPkcs12SecretKeys(readFileSync(keystorePath), password);
  assert.ok(stk);
  const known = new Map<string, Buffer>([
    ['orders-v1', randomBytes(32)],
    ['orders-v2', randomBytes(32)],
    ['billing-v1', randomBytes(32)],
  ]);
  const secrets = new Map<string, Buffer>([
    [`system key ${stk.alias}`, Buffer.from(stk.key.expose())],
    ...known,
  ]);
  writeFileSync(
    keystorePath,
    writePkcs12SecretKeys(
      [
        { alias: stk.alias, key: stk.key },
        ...[...known].map(([alias, key]) => ({ alias, key: SecretBytes.copyOf(key) })),
      ],
      password,
    ),
    { mode: 0o600 },
  );
  return secrets;
}
