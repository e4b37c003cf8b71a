export { checkRefreshAnswer, planRefresh, type RefreshPlan } from './decideRefresh.js';
export * from './decideScope.js';
export * from './decideSystemKey.js';
export * from './errors.js';
export { type KeyRecord, keyRecordSchema } from './eventFields.js';
export * from './events.js';
export * from './identities.js';
export type * from './json.js';
export * from './keyDigests.js';
export { assertUsableForActivation, type KeyFacts } from './keyFacts.js';
export * from './keyState.js';
export {
  LEGACY_CAMPAIGN_NAME,
  MAX_LEGACY_BATCH,
  MAX_LEGACY_RECORD_ID,
} from './legacyReencryptionEventSchemas.js';
export * from './persistentOrderedMap.js';
export { REWRAP_CAMPAIGN_ID } from './rewrapEventSchemas.js';
export * from './scopeState.js';
