import type { ReadResp } from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import type { EventLog, StoredEvent } from './eventLog.js';
import { readEventResponse } from './protoConvert.js';
import { filterMatches, type ReadRequest } from './readRequest.js';
import { type ServerError, streamDeletedError } from './serverErrors.js';
import { DELETED_STREAM_REVISION } from './streamMetadata.js';

/**
 * Catch-up subscriptions as the server runs them: a confirmation, the catch-up events after the
 * (exclusive) start, `caughtUp`, then live events. The log is in memory and JS runs one handler at a
 * time, so catch-up and the switch to live happen in one synchronous step: no event can slip between.
 */

export interface SubscriptionSink {
  send(response: ReadResp): void;
  fail(error: ServerError): void;
}

/** Stops delivering live events. */
export type Unsubscribe = () => void;

type StreamTarget = Extract<ReadRequest['target'], { kind: 'stream' }>;
type AllTarget = Extract<ReadRequest['target'], { kind: 'all' }>;

export function subscribeToStream(
  log: EventLog,
  target: StreamTarget,
  request: ReadRequest,
  sink: SubscriptionSink,
): Unsubscribe {
  sendConfirmation(sink);
  if (log.isTombstoned(target.streamName)) {
    sink.fail(streamDeletedError(target.streamName));
    return () => {};
  }
  const options = { structuredUuid: request.structuredUuid, withPosition: false };
  const from = target.from;
  let lastSent =
    from.kind === 'revision'
      ? from.revision
      : from.kind === 'end'
        ? log.lastRevision(target.streamName)
        : -1n;
  const view = log.streamView(target.streamName);
  if (from.kind !== 'end' && view.kind === 'events') {
    for (const event of view.events) {
      if (event.revision <= lastSent) continue;
      sink.send(readEventResponse(event, options));
      lastSent = event.revision;
    }
  }
  sink.send(new streamsPb.ReadResp().setCaughtUp(new streamsPb.ReadResp.CaughtUp()));
  const unsubscribe = log.onWrite((event) => {
    if (event.streamName !== target.streamName) return;
    if (event.revision === DELETED_STREAM_REVISION) {
      unsubscribe();
      sink.fail(streamDeletedError(target.streamName));
      return;
    }
    if (event.revision <= lastSent) return;
    sink.send(readEventResponse(event, options));
    lastSent = event.revision;
  });
  return unsubscribe;
}

/**
 * `$all`, optionally filtered. A filtered subscription counts every event it scans, matched or not,
 * and sends a checkpoint each `maxSearchWindow × checkpointIntervalMultiplier` of them, and one more
 * when catch-up ends (as the server does, so a quiet filter still moves the client's position). A
 * checkpoint names the last scanned event: every matching event at or before it has been sent, so a
 * subscriber resuming from it (exclusive) loses nothing.
 */
export function subscribeToAll(
  log: EventLog,
  target: AllTarget,
  request: ReadRequest,
  sink: SubscriptionSink,
): Unsubscribe {
  sendConfirmation(sink);
  const options = { structuredUuid: request.structuredUuid, withPosition: true };
  const filter = request.filter;
  const from = target.from;
  const head = log.records[log.records.length - 1]?.position ?? 0n;
  let lastScanned: bigint | undefined = from.kind === 'position' ? from.position : undefined;
  let lastCheckpoint: bigint | undefined;
  let scannedSinceCheckpoint = 0;

  const sendCheckpoint = (position: bigint) => {
    if (lastCheckpoint !== undefined && position <= lastCheckpoint) return;
    lastCheckpoint = position;
    scannedSinceCheckpoint = 0;
    const checkpoint = new streamsPb.ReadResp.Checkpoint()
      .setCommitPosition(position.toString())
      .setPreparePosition(position.toString());
    sink.send(new streamsPb.ReadResp().setCheckpoint(checkpoint));
  };
  const scan = (event: StoredEvent) => {
    if (lastScanned !== undefined && event.position <= lastScanned) return;
    lastScanned = event.position;
    if (filter === undefined) {
      sink.send(readEventResponse(event, options));
      return;
    }
    if (filterMatches(filter, event.streamName, event.type)) sink.send(readEventResponse(event, options));
    scannedSinceCheckpoint += 1;
    if (scannedSinceCheckpoint >= filter.checkpointInterval) sendCheckpoint(event.position);
  };

  if (from.kind === 'end') {
    lastScanned = head;
  } else {
    for (const event of log.records) scan(event);
    if (filter !== undefined && lastScanned !== undefined) sendCheckpoint(lastScanned);
  }
  sink.send(new streamsPb.ReadResp().setCaughtUp(new streamsPb.ReadResp.CaughtUp()));
  return log.onWrite(scan);
}

function sendConfirmation(sink: SubscriptionSink): void {
  const confirmation = new streamsPb.ReadResp.SubscriptionConfirmation().setSubscriptionId(
    crypto.randomUUID(),
  );
  sink.send(new streamsPb.ReadResp().setConfirmation(confirmation));
}
