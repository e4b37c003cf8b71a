import type { EventLog, ProposedEvent } from './eventLog.js';
import { ANY_REVISION } from './expectedRevision.js';

/**
 * System events a real node writes on its own, so `$all` is never only the test's events and
 * subscribers must filter: on first start the admin user and the metadata of its statistics and
 * scavenge streams; on every start a new `$epoch-information` record (a restart begins a new epoch).
 */
export function writeStartupSystemEvents(log: EventLog, epochNumber: number, nodeAddress: string): void {
  const epochPosition = log.records[log.records.length - 1]?.position ?? 0n;
  append(log, '$epoch-information', '$epoch-information', {
    EpochNumber: epochNumber,
    EpochPosition: Number(epochPosition),
    EpochId: crypto.randomUUID(),
    LeaderInstanceId: crypto.randomUUID(),
  });
  if (epochNumber > 0) return;
  append(log, `$$$stats-${nodeAddress}`, '$metadata', { $maxAge: 86400 });
  append(log, '$$$scavenges', '$metadata', { $maxAge: 2592000 });
  append(log, '$user-admin', '$UserCreated', { loginName: 'admin', fullName: 'Event Store Administrator' });
  append(log, '$users', '$User', 'admin');
}

function append(log: EventLog, streamName: string, type: string, body: unknown): void {
  const event: ProposedEvent = {
    id: crypto.randomUUID(),
    type,
    contentType: 'application/json',
    data: Buffer.from(JSON.stringify(body), 'utf8'),
    customMetadata: new Uint8Array(),
  };
  log.append(streamName, ANY_REVISION, [event]);
}
