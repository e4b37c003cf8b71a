import { z } from 'zod';
import { isCanonicalCustodian, isKeyId, isMetadataHash, isNamespace } from './identities.js';
import { KEY_STATES, PROVIDER_KEY_STATES } from './keyState.js';

/**
 * Hand-written checks for the events a replay reads most (refreshes, wrapped material, rotations,
 * disables, cache ejections) and for the metadata of every event. zod's generic object walk costs
 * several microseconds per event, most of a replay's time; these cost a fraction of that.
 *
 * They only ever vouch: `true` means the zod schema in events.ts accepts the value and answers it
 * unchanged (every field checked as zod checks it, no unknown key, every transform an identity on
 * this value), so the parser may use the value as it is. `false` means "not vouched for", never
 * "invalid": the parser then runs the zod schema, which decides, and whose message an error
 * carries. So these checks may be stricter than zod (a non-canonical custodian, a non-plain object,
 * keys in another order are all left to zod) but never looser; test/unit/eventValidation.test.ts
 * holds them to that with fast-check, against the schemas themselves.
 *
 * Values are JSON as the stores hand them out (JSON.parse'd or frozen copies of it): plain objects,
 * strings, numbers, null. Anything else goes to zod.
 */

/** Hex patterns shared with the event schemas (eventFields.ts), so that the schemas and these checks test the same thing. */
export const HEX16 = /^[0-9a-f]{16}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The schema the event schemas use for times, and the very pattern zod tests with it. */
export const isoDatetime = () => z.iso.datetime();
const ISO_DATETIME = isoDatetime()._zod.def.pattern;

const KEY_STATE_SET: ReadonlySet<unknown> = new Set(KEY_STATES);
const PROVIDER_KEY_STATE_SET: ReadonlySet<unknown> = new Set(PROVIDER_KEY_STATES);

type Fields = Readonly<Record<string, unknown>>;

function isPlainObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

interface KeyList {
  readonly keys: readonly string[];
  readonly known: ReadonlySet<string>;
}

function keyList(...keys: string[]): KeyList {
  return { keys, known: new Set(keys) };
}

/**
 * No key besides `list` (zod's strictObject, which looks with `for...in` too). The names come in
 * the writers' order, so comparing with the expected name at the same place settles most of them.
 */
function onlyKeys(value: Fields, list: KeyList): boolean {
  let i = 0;
  for (const key in value) {
    if (key !== list.keys[i] && !list.known.has(key)) return false;
    i++;
  }
  return true;
}

function text(value: unknown, min: number, max: number): boolean {
  return typeof value === 'string' && value.length >= min && value.length <= max;
}

function matches(value: unknown, pattern: RegExp): boolean {
  return typeof value === 'string' && pattern.test(value);
}

function keyId(value: unknown): boolean {
  return typeof value === 'string' && isKeyId(value);
}

function metadataHash(value: unknown): boolean {
  return typeof value === 'string' && isMetadataHash(value);
}

/** custodian and namespace, as `scoped` in eventFields.ts; the custodian only in its canonical form. */
function scoped(value: Fields): boolean {
  const { custodian, namespace } = value;
  return (
    typeof custodian === 'string' &&
    isCanonicalCustodian(custodian) &&
    typeof namespace === 'string' &&
    isNamespace(namespace)
  );
}

const KEY_RECORD = keyList('keyId', 'metadata', 'metadataHash', 'checksum', 'stkIdentity');
function keyRecord(value: unknown): boolean {
  return (
    isPlainObject(value) &&
    onlyKeys(value, KEY_RECORD) &&
    keyId(value.keyId) &&
    text(value.metadata, 1, 4096) &&
    metadataHash(value.metadataHash) &&
    matches(value.checksum, HEX16) &&
    matches(value.stkIdentity, HEX16)
  );
}

const KEY_CHANGE = keyList('custodian', 'namespace', 'key', 'previousKeyId');
/** KeyManagementEnabled, ManagedKeyRotated, ManagedKeySet. */
function keyChange(data: Fields): boolean {
  return (
    onlyKeys(data, KEY_CHANGE) &&
    scoped(data) &&
    keyRecord(data.key) &&
    (data.previousKeyId === null || keyId(data.previousKeyId))
  );
}

const KEY_DISABLED = keyList('custodian', 'namespace', 'keyId', 'previousState');
function keyDisabled(data: Fields): boolean {
  return (
    onlyKeys(data, KEY_DISABLED) && scoped(data) && keyId(data.keyId) && KEY_STATE_SET.has(data.previousState)
  );
}

const KEY_REENABLED = keyList('custodian', 'namespace', 'keyId');
function keyReenabled(data: Fields): boolean {
  return onlyKeys(data, KEY_REENABLED) && scoped(data) && keyId(data.keyId);
}

const KEY_REFRESHED = keyList('custodian', 'namespace', 'keyId', 'previousState', 'state', 'providerState');
function keyRefreshed(data: Fields): boolean {
  return (
    onlyKeys(data, KEY_REFRESHED) &&
    scoped(data) &&
    keyId(data.keyId) &&
    KEY_STATE_SET.has(data.previousState) &&
    KEY_STATE_SET.has(data.state) &&
    PROVIDER_KEY_STATE_SET.has(data.providerState)
  );
}

const CACHE_ENTRY_EJECTED = keyList('custodian', 'namespace', 'keyId');
function cacheEntryEjected(data: Fields): boolean {
  return onlyKeys(data, CACHE_ENTRY_EJECTED) && scoped(data) && (data.keyId === null || keyId(data.keyId));
}

const MATERIAL_WRAPPED = keyList(
  'custodian',
  'namespace',
  'keyId',
  'metadataHash',
  'stkIdentity',
  'algorithm',
  'wrapped',
);
function materialWrapped(data: Fields): boolean {
  return (
    onlyKeys(data, MATERIAL_WRAPPED) &&
    scoped(data) &&
    keyId(data.keyId) &&
    metadataHash(data.metadataHash) &&
    matches(data.stkIdentity, HEX16) &&
    data.algorithm === 'AES-256-GCM' &&
    text(data.wrapped, 1, 1024)
  );
}

/** The event types with a hand-written check; the others always go to zod. */
const DATA_CHECKS: Readonly<Record<string, (data: Fields) => boolean>> = {
  KeyManagementEnabled: keyChange,
  ManagedKeyRotated: keyChange,
  ManagedKeySet: keyChange,
  ManagedKeyDisabled: keyDisabled,
  ManagedKeyReenabled: keyReenabled,
  ManagedKeyRefreshed: keyRefreshed,
  CacheEntryEjected: cacheEntryEjected,
  KeyMaterialWrapped: materialWrapped,
};

export const FAST_CHECKED_EVENT_TYPES: readonly string[] = Object.keys(DATA_CHECKS);

/** True only if `eventDataSchemas[type]` accepts `data` and answers it unchanged. */
export function fastCheckData(type: string, data: unknown): boolean {
  const check = Object.hasOwn(DATA_CHECKS, type) ? DATA_CHECKS[type] : undefined;
  return check !== undefined && isPlainObject(data) && check(data);
}

const METADATA_V1 = keyList('schemaVersion', 'actor', 'reason', 'correlationId', 'causationId', 'occurredAt');
const METADATA_V2 = keyList(...METADATA_V1.keys, 'prevHash');
const METADATA_V3 = keyList(...METADATA_V2.keys, 'checkpoint');
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

/** True only if `eventMetadataSchema` accepts `metadata` and answers it unchanged. */
export function fastCheckMetadata(metadata: unknown): boolean {
  if (!isPlainObject(metadata)) return false;
  const version = metadata.schemaVersion;
  if (version === 2 || version === 3) {
    if (!onlyKeys(metadata, version === 2 ? METADATA_V2 : METADATA_V3)) return false;
    if (metadata.prevHash !== null && !matches(metadata.prevHash, SHA256_HEX)) return false;
    if (version === 3 && !matches(metadata.checkpoint, DECIMAL)) return false;
  } else if (version !== 1 || !onlyKeys(metadata, METADATA_V1)) {
    return false;
  }
  const { reason, causationId } = metadata;
  return (
    text(metadata.actor, 1, 256) &&
    (reason === null || text(reason, 0, 1024)) &&
    text(metadata.correlationId, 1, 128) &&
    (causationId === null || text(causationId, 0, 128)) &&
    ISO_DATETIME !== undefined &&
    matches(metadata.occurredAt, ISO_DATETIME)
  );
}
