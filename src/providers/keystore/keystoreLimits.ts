/**
 * Bounds on what the PKCS#12 reader will spend on one keystore file. Keystore files are untrusted
 * input (anyone who can replace the file can make every process that loads it do this work), so each
 * cost a hostile file could inflate has a ceiling, far above what keytool writes:
 *
 * - the file: a secret-key entry is about 300 bytes, so 16 MiB is tens of thousands of entries;
 * - entries: safe bags per store, each parsed (but only decrypted when its key is asked for);
 * - iterations: PBKDF2 (per entry) and the PKCS#12 KDF (MAC, once per load). keytool writes 10,000 for
 *   both (Java 12+; Java 8 wrote 50,000 and 100,000); 100,000 keeps those and bounds a load to well
 *   under a second, where Java's own ceiling of 5,000,000 lets one file block a process for a minute;
 * - OIDs: an OBJECT IDENTIFIER longer than any real one (a 200 KB arc took ~100 s to decode before);
 * - nesting: PKCS#12 nests about a dozen levels; anything deeper is not a keystore.
 */
export const KEYSTORE_LIMITS = {
  fileBytes: 16 * 1024 * 1024,
  entries: 10_000,
  iterations: 100_000,
  oidBytes: 128,
  /** 20 bytes hold a 128-bit arc (the UUID OIDs of 2.25), the largest arc in common use. */
  oidArcBytes: 20,
  nesting: 32,
} as const;

export type KeystoreLimit = keyof typeof KEYSTORE_LIMITS;
