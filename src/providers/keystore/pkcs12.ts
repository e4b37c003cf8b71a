/**
 * PKCS#12 keystores holding secret keys, interchangeable with Java's keytool (Java 12+ defaults).
 * Only what keytool needs for secret keys is implemented; see the two modules for the exact formats.
 */
export { type Pkcs12SecretKeyEntry, readPkcs12SecretKeys } from './readPkcs12SecretKeys.js';
export {
  type Pkcs12SecretKeyInput,
  type Pkcs12WriteOptions,
  writePkcs12SecretKeys,
} from './writePkcs12SecretKeys.js';
