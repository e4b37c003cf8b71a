import { openPkcs12Keystore, type Pkcs12SecretKeyEntry } from './openPkcs12Keystore.js';

export type { Pkcs12SecretKeyEntry } from './openPkcs12Keystore.js';

/**
 * Every secret-key entry of a PKCS#12 keystore, decrypted, in file order. For tools that want the whole
 * store (export, rewrap); a provider that needs one key opens the store and decrypts only that one.
 */
export function readPkcs12SecretKeys(data: Uint8Array, password: string): Pkcs12SecretKeyEntry[] {
  const store = openPkcs12Keystore(data, password);
  const entries: Pkcs12SecretKeyEntry[] = [];
  try {
    for (const alias of store.aliases) {
      const entry = store.secretKey(alias, password);
      if (entry !== undefined) entries.push(entry);
    }
    return entries;
  } catch (error) {
    for (const entry of entries) entry.key.zero();
    throw error;
  }
}
