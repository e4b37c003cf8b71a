import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { writePkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

/**
 * Writes a PKCS#12 keystore at `keystorePath` holding a fresh random 32-byte key per alias, and its
 * password to `passwordFile` (both 0600). Few PBKDF iterations: tests open it many times.
 */
export function writeTestKeystore(
  keystorePath: string,
  passwordFile: string,
  password: string,
  aliases: readonly string[],
): void {
  writeFileSync(passwordFile, password, { mode: 0o600 });
  writeFileSync(
    keystorePath,
    writePkcs12SecretKeys(
      aliases.map((alias) => ({ alias, key: SecretBytes.adopt(new Uint8Array(randomBytes(32))) })),
      password,
      { iterations: 1000 },
    ),
    { mode: 0o600 },
  );
}
