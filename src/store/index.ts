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
