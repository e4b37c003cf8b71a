/**
 * keyledger's public API. Everything a library user needs is exported here; deeper module paths
 * are internal and may change.
 */
export type { HistoryEntry, KeyChange } from './audit/history.js';
export { type CacheMetrics, type LayerCounters, toPrometheus } from './cache/cacheMetrics.js';
export type { ActiveResolution, CachedKey, KeyCacheOptions, ResolutionTarget } from './cache/keyCache.js';
export { DecryptionFailedError } from './crypto/decryptionFailedError.js';
export {
  type DecryptOptions,
  type EncryptOptions,
  Envelope,
  type EnvelopeOptions,
} from './crypto/envelope.js';
export {
  EnvelopeStreams,
  type EnvelopeStreamsOptions,
  type StreamDecryptOptions,
  type StreamEncryptOptions,
} from './crypto/envelopeStream.js';
export { keyChecksum } from './crypto/keyChecksum.js';
export { SecretBytes } from './crypto/secretBytes.js';
export type { SystemKeyHandle } from './crypto/systemKeyHandle.js';
export { softwareSystemKey } from './crypto/systemKeyHandle.js';
export {
  ERROR_CODES,
  type ErrorCategory,
  type ErrorCode,
  EventSchemaError,
  isKeyledgerError,
  KeyledgerError,
  VersionConflictError,
} from './domain/errors.js';
export type { LedgerEvent, LedgerEventType } from './domain/events.js';
export {
  type Custodian,
  GLOBAL_CUSTODIAN,
  GLOBAL_NAMESPACE,
  type KeyId,
  type KeyScope,
  keyScope,
  type MetadataHash,
  type Namespace,
  parseScope,
} from './domain/identities.js';
export { KEY_STATES, type KeyState, MARKER_STATES, type MarkerState } from './domain/keyState.js';
export type { KeyInfo, ScopeStatus } from './ledger/keyInfo.js';
export type {
  EnableResult,
  KeymetaAdmin,
  KeyResult,
  OperationOptions,
  RefreshResult,
  WriteResult,
} from './ledger/keymetaAdmin.js';
export type { KeyResolver, KeyResolverOptions } from './ledger/keyResolver.js';
export { Ledger, type LedgerOptions } from './ledger/ledger.js';
export { type DataLocation, namespaceCandidates } from './ledger/namespaceCandidates.js';
export type {
  RetireResult,
  RewrapCampaignInfo,
  RewrapCampaigns,
  RewrapOptions,
  RewrapResult,
  RewrapStatus,
  SystemKeyUsage,
} from './ledger/rewrapCampaign.js';
export type { SystemKeyChange } from './ledger/systemKeyManager.js';
export { GeneratedKeyProvider } from './providers/generated/generatedKeyProvider.js';
export { type KeystoreConfig, resolveKeystoreConfig } from './providers/keystore/keystoreConfig.js';
export { KeystoreKeyProvider } from './providers/keystore/keystoreKeyProvider.js';
export { readPkcs12SecretKeys, writePkcs12SecretKeys } from './providers/keystore/pkcs12.js';
export type {
  ManagedKeyData,
  ManagedKeyProvider,
  WrappedKeyMaterial,
} from './providers/managedKeyProvider.js';
export * from './store/index.js';
