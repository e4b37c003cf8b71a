export { EsdbEventStore, type EsdbEventStoreOptions } from './esdbEventStore.js';
export type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  JsonObject,
  JsonValue,
  ReadAllOptions,
  RecordedEvent,
  Snapshot,
  SubscribeOptions,
} from './eventStore.js';
export { ForwardingEventStore } from './forwardingEventStore.js';
export { MemoryEventStore } from './memoryEventStore.js';
export { SqliteEventStore, type SqliteEventStoreOptions } from './sqliteEventStore.js';
export {
  DEFAULT_STORE_URL,
  openEventStore,
  parseStoreUrl,
  redactStoreUrl,
  type StoreLocation,
} from './storeUrl.js';
