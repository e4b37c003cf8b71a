/**
 * PKCS#12 keystores holding secret keys, interchangeable with Java's keytool (Java 12+ defaults).
 * Only what keytool needs for secret keys is implemented; see the two modules for the exact formats.
 */
export { KEYSTORE_LIMITS, type KeystoreLimit } from './keystoreLimits.js';
export {
  openPkcs12Keystore,
  Pkcs12Keystore,
  type Pkcs12SecretKeyEntry,
} from './openPkcs12Keystore.js';
export { readPkcs12SecretKeys } from './readPkcs12SecretKeys.js';
export {
  type Pkcs12SecretKeyInput,
  type Pkcs12WriteOptions,
  writePkcs12SecretKeys,
} from './writePkcs12SecretKeys.js';
