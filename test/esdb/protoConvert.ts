import type { StreamIdentifier, UUID } from '@eventstore/db-client/generated/shared_pb.js';
import sharedPb from '@eventstore/db-client/generated/shared_pb.js';
import type { AppendReq, BatchAppendReq, ReadResp } from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import type { ProposedEvent, StoredEvent } from './eventLog.js';

/**
 * Conversions between the client package's generated protobuf classes and the log's plain records.
 * Replies must be built from these very classes: the generated serializers check `instanceof`.
 */

export function streamNameOf(identifier: StreamIdentifier | undefined): string {
  return identifier === undefined ? '' : Buffer.from(identifier.getStreamName_asU8()).toString('utf8');
}

export function streamIdentifier(streamName: string): StreamIdentifier {
  return new sharedPb.StreamIdentifier().setStreamName(Uint8Array.from(Buffer.from(streamName, 'utf8')));
}

/** A UUID message as either form the protocol allows; returns the lower-case string form. */
export function uuidToString(uuid: UUID | undefined): string {
  if (uuid === undefined) return '';
  if (!uuid.hasStructured()) return uuid.getString().toLowerCase();
  const structured = uuid.getStructured();
  const bytes = Buffer.alloc(16);
  bytes.writeBigUInt64BE(BigInt.asUintN(64, BigInt(structured?.getMostSignificantBits() ?? '0')), 0);
  bytes.writeBigUInt64BE(BigInt.asUintN(64, BigInt(structured?.getLeastSignificantBits() ?? '0')), 8);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Builds a UUID message; `structured` gives the two signed 64-bit halves, as the server does when asked. */
export function uuidMessage(id: string, structured: boolean): UUID {
  const uuid = new sharedPb.UUID();
  if (!structured) return uuid.setString(id);
  const bytes = Buffer.from(id.replaceAll('-', ''), 'hex');
  const halves = new sharedPb.UUID.Structured()
    .setMostSignificantBits(bytes.readBigInt64BE(0).toString())
    .setLeastSignificantBits(bytes.readBigInt64BE(8).toString());
  return uuid.setStructured(halves);
}

export function proposedEventOf(
  message: AppendReq.ProposedMessage | BatchAppendReq.ProposedMessage,
): ProposedEvent {
  const metadata = message.getMetadataMap();
  return {
    id: uuidToString(message.getId()),
    type: metadata.get('type') ?? '',
    contentType: metadata.get('content-type') ?? 'application/octet-stream',
    data: message.getData_asU8(),
    customMetadata: message.getCustomMetadata_asU8(),
  };
}

/** .NET ticks (100 ns) since the Unix epoch: what the server sends as the `created` metadata entry. */
const TICKS_PER_MILLISECOND = 10_000n;

export interface ReadEventOptions {
  readonly structuredUuid: boolean;
  /** `$all` reads carry the event's commit position; stream reads say no_position. */
  readonly withPosition: boolean;
}

export function readEventResponse(event: StoredEvent, options: ReadEventOptions): ReadResp {
  const recorded = new streamsPb.ReadResp.ReadEvent.RecordedEvent()
    .setId(uuidMessage(event.id, options.structuredUuid))
    .setStreamIdentifier(streamIdentifier(event.streamName))
    .setStreamRevision(event.revision.toString())
    .setPreparePosition(event.position.toString())
    .setCommitPosition(event.position.toString())
    .setData(event.data)
    .setCustomMetadata(event.customMetadata);
  const metadata = recorded.getMetadataMap();
  metadata.set('type', event.type);
  metadata.set('content-type', event.contentType);
  metadata.set('created', (BigInt(event.createdMs) * TICKS_PER_MILLISECOND).toString());
  const readEvent = new streamsPb.ReadResp.ReadEvent().setEvent(recorded);
  if (options.withPosition) readEvent.setCommitPosition(event.position.toString());
  else readEvent.setNoPosition(new sharedPb.Empty());
  return new streamsPb.ReadResp().setEvent(readEvent);
}
