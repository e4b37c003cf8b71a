/**
 * keyledger's public API. Everything a library user needs is exported here; deeper module paths
 * are internal and may change.
 */
export { type AsOfTarget, type KeymetaAsOf, parseAsOf } from './audit/asOf.js';
export type { AuditExportSummary } from './audit/auditExport.js';
export type { CheckpointResult } from './audit/checkpointer.js';
export type { HistoryEntry, KeyChange } from './audit/history.js';
export {
  type DayMetrics,
  type KeyMetrics,
  type KeyMetricsFold,
  type KeyMetricsRange,
  type KeyStateCounts,
  keyMetrics,
  keyMetricsFold,
} from './audit/keyMetrics.js';
export type { LedgerVerifyOptions } from './audit/ledgerIntegrity.js';
export { type VerifyAuditFileOptions, verifyAuditFile } from './audit/verifyAuditFile.js';
export type { ProblemKind, VerifyProblem } from './audit/verifyProblem.js';
export type { VerifiedCheckpoint, VerifyReport } from './audit/verifyReport.js';
export { type VerifyStoreOptions, verifyStore } from './audit/verifyStore.js';
export type { CacheMetrics, LayerCounters } from './cache/cacheMetrics.js';
export type { KeyCacheOptions } from './cache/keyCache.js';
export { KeyledgerClient, type KeyledgerClientOptions } from './client/keyledgerClient.js';
export { DecryptionFailedError } from './crypto/decryptionFailedError.js';
export type { DecryptStream } from './crypto/decryptStream.js';
export {
  type DecryptOptions,
  type DecryptResult,
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
export type { DecryptionKeyInfo, ExpectedScope } from './crypto/expectedScope.js';
export { keyChecksum } from './crypto/keyChecksum.js';
export type { ActiveResolution, CachedKey, ResolutionTarget } from './crypto/keySource.js';
export { LEGACY_ALGORITHMS, type LegacyAlgorithm } from './crypto/legacyAesGcm.js';
export type { SystemKeyHandle } from './crypto/systemKeyHandle.js';
export { softwareSystemKey } from './crypto/systemKeyHandle.js';
export { DEFAULT_DESTROY_GRACE_MS, materialHashOf } from './domain/decideDestroy.js';
export {
  ERROR_CODES,
  ERRORS,
  type ErrorCategory,
  type ErrorCode,
  type ErrorDetailsOf,
  EventSchemaError,
  errorDetailsSchema,
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
export type {
  ApiTokens,
  CreatedToken,
  CreateTokenRequest,
  RevokedToken,
  TokenCheck,
  TokenInfo,
} from './ledger/apiTokens.js';
export type { BulkEnableOptions } from './ledger/bulkEnable.js';
export type {
  DestroyDueResult,
  DestructionReceipt,
  KeyDestruction,
  ScheduleDestructionOptions,
} from './ledger/keyDestruction.js';
export type { KeyInfo, ScopeStatus, ScopeStatusAsOf } from './ledger/keyInfo.js';
export type { EnableResult, KeymetaAdmin, RefreshResult } from './ledger/keymetaAdmin.js';
export type { KeyResolver, KeyResolverOptions } from './ledger/keyResolver.js';
export { Ledger } from './ledger/ledger.js';
export type { LedgerEventOf, LedgerEventsOptions } from './ledger/ledgerEvents.js';
export type { LedgerOptions } from './ledger/ledgerOptions.js';
export type {
  LegacyCampaignInfo,
  LegacyRecord,
  LegacyRecordResult,
  LegacyReencryption,
  ReencryptedBatch,
} from './ledger/legacyCampaign.js';
export type {
  LegacyDataResult,
  LegacyReencryptions,
  LegacyStartOptions,
} from './ledger/legacyReencryption.js';
export { type DataLocation, namespaceCandidates } from './ledger/namespaceCandidates.js';
export type { KeyResult, OperationOptions, WriteResult } from './ledger/operationOptions.js';
export type { RewrapCampaigns } from './ledger/rewrapCampaign.js';
export type {
  RewrapCampaignInfo,
  RewrapResult,
  RewrapStatus,
  SystemKeyUsage,
} from './ledger/rewrapCampaignInfo.js';
export type { RewrapOptions } from './ledger/rewrapOptions.js';
export type { RetireResult, SystemKeyChange } from './ledger/systemKeyLifecycle.js';
export {
  type AnyOperation,
  custodianHint,
  NAME_PREFIX,
  OPERATIONS,
  type Operation,
  type OperationHost,
  type OperationName,
  type OutputOf,
  type Permission,
  type Plain,
  parseCustodianArg,
  parseKeyRef,
  parseScopeArg,
  plain,
} from './operations/index.js';
export {
  type BytesName,
  type BytesResult,
  type ByteTransfer,
  type CallOptions,
  type InputOf,
  type KeyledgerApi,
  LOCAL_ONLY_OPERATIONS,
  type UnaryName,
  type WatchItem,
} from './operations/keyledgerApi.js';
export { LedgerApi, type LedgerApiOptions } from './operations/ledgerApi.js';
export { GeneratedKeyProvider } from './providers/generated/generatedKeyProvider.js';
export { type KeystoreConfig, resolveKeystoreConfig } from './providers/keystore/keystoreConfig.js';
export { KeystoreKeyProvider } from './providers/keystore/keystoreKeyProvider.js';
export { readPkcs12SecretKeys, writePkcs12SecretKeys } from './providers/keystore/pkcs12.js';
export type {
  ManagedKeyData,
  ManagedKeyProvider,
  WrappedKeyMaterial,
} from './providers/managedKeyProvider.js';
export { SecretBytes } from './secrets/secretBytes.js';
export * from './store/index.js';
