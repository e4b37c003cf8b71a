import { createHash } from 'node:crypto';
import { CHAINED_SCHEMA_VERSION, CHECKPOINTED_SCHEMA_VERSION } from '../domain/events.js';
import type { JsonObject } from '../store/eventStore.js';
import { canonicalJson } from './canonicalJson.js';

/**
 * The hash chain (docs/formats.md, "Event hash"): every event's metadata carries `prevHash`, the
 * hash of the event before it in its stream (null for a stream's first event), so changing,
 * inserting, removing or reordering an event breaks a link that verify finds.
 *
 * What is hashed is what the writer knows before the store answers: stream name, event id, type,
 * data and metadata. The revision and global position are the store's to assign (a stream deleted
 * and written again continues its revisions, which an appender cannot read back), so they are not
 * part of the hash; the chain fixes each event's place in its stream, and checkpoints record the
 * revisions and positions of the stream heads.
 */

const PREIMAGE_TAG = Buffer.from('keyledger-event-v1\0', 'ascii');
const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** What the hash covers; a RecordedEvent or an EventToAppend with its stream name both fit. */
export interface HashableEvent {
  readonly streamName: string;
  readonly eventId: string;
  readonly type: string;
  readonly data: unknown;
  readonly metadata: unknown;
}

/**
 * "keyledger-event-v1" 0x00 ‖ lp(stream) ‖ lp(eventId) ‖ lp(type) ‖ lp(cjson(data)) ‖
 * lp(cjson(metadata)), where lp(s) is the UTF-8 byte length of s as 4 bytes big-endian, then s.
 */
function preimageFields(event: HashableEvent): string[] {
  return [
    event.streamName,
    event.eventId,
    event.type,
    canonicalJson(event.data),
    canonicalJson(event.metadata),
  ];
}

export function eventHashPreimage(event: HashableEvent): Buffer {
  const fields = preimageFields(event);
  const lengths = fields.map((field) => Buffer.byteLength(field, 'utf8'));
  // One allocation, written in place: verify hashes every event of the ledger.
  const preimage = Buffer.allocUnsafe(lengths.reduce((sum, n) => sum + 4 + n, PREIMAGE_TAG.length));
  let offset = PREIMAGE_TAG.copy(preimage, 0);
  fields.forEach((field, i) => {
    offset = preimage.writeUInt32BE(lengths[i] ?? 0, offset);
    offset += preimage.write(field, offset, 'utf8');
  });
  return preimage;
}

/** hex(SHA-256(preimage)): 64 lowercase hex digits. */
export function eventHash(event: HashableEvent): string {
  return createHash('sha256').update(eventHashPreimage(event)).digest('hex');
}

export function isEventHash(value: unknown): value is string {
  return typeof value === 'string' && HASH_PATTERN.test(value);
}

/**
 * What an event's metadata says about its link: `chained` (schemaVersion 2 with a well-formed
 * prevHash or null; 3 also names the newest checkpoint its writer knew), `legacy` (schemaVersion 1
 * without one: written before the chain existed) or `malformed` (anything else, which an untouched
 * ledger never holds).
 */
export type ChainLink =
  | { readonly kind: 'chained'; readonly prevHash: string | null; readonly checkpoint?: bigint }
  | { readonly kind: 'legacy' }
  | { readonly kind: 'malformed' };

export function chainLinkOf(metadata: unknown): ChainLink {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
    return { kind: 'malformed' };
  const m = metadata as Record<string, unknown>;
  if (m.schemaVersion === CHAINED_SCHEMA_VERSION) {
    const prevHash = m.prevHash;
    if (prevHash === null) return { kind: 'chained', prevHash: null };
    return isEventHash(prevHash) ? { kind: 'chained', prevHash } : { kind: 'malformed' };
  }
  if (m.schemaVersion === CHECKPOINTED_SCHEMA_VERSION) {
    const { prevHash, checkpoint } = m;
    if ((prevHash !== null && !isEventHash(prevHash)) || typeof checkpoint !== 'string')
      return { kind: 'malformed' };
    if (!/^(0|[1-9][0-9]{0,19})$/.test(checkpoint)) return { kind: 'malformed' };
    return { kind: 'chained', prevHash, checkpoint: BigInt(checkpoint) };
  }
  if (m.schemaVersion === 1 && !Object.hasOwn(m, 'prevHash')) return { kind: 'legacy' };
  return { kind: 'malformed' };
}

/**
 * The metadata as the chain stores it: the link to the stream's previous event (schemaVersion 2),
 * and once the writer knows a checkpoint, that checkpoint's revision (schemaVersion 3).
 */
export function chainedMetadata(
  metadata: JsonObject,
  prevHash: string | null,
  checkpoint: bigint | null = null,
): JsonObject {
  if (checkpoint === null) return { ...metadata, schemaVersion: CHAINED_SCHEMA_VERSION, prevHash };
  return {
    ...metadata,
    schemaVersion: CHECKPOINTED_SCHEMA_VERSION,
    prevHash,
    checkpoint: checkpoint.toString(),
  };
}
