import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { EventStore, RecordedEvent } from '../store/eventStore.js';

/**
 * `keyledger audit export`: the ledger as JSON lines (docs/formats.md, "Audit export"), read from
 * the store page by page and written as it is read, so a ledger of any size exports in constant
 * memory. `verify --file` checks the file offline.
 */

export const AUDIT_EXPORT_FORMAT = 'keyledger-audit-export';
export const AUDIT_EXPORT_VERSION = 1;

/** Lines are gathered into chunks of about this many characters before a write. */
const CHUNK_CHARS = 64 * 1024;

export interface AuditExportSummary {
  readonly prefix: string;
  /** The store's head when the export began: every ledger event up to it is in the file. */
  readonly headPosition: bigint;
  readonly events: number;
  readonly exportedAt: string;
}

export function auditEventLine(event: RecordedEvent): string {
  return JSON.stringify({
    stream: event.streamName,
    revision: event.revision.toString(),
    position: event.position.toString(),
    eventId: event.eventId,
    type: event.type,
    data: event.data,
    metadata: event.metadata,
    recordedAt: event.recordedAt.toISOString(),
  });
}

/** Writes the export to `out` (left open: the caller ends it). Waits whenever `out` asks it to. */
export async function exportAudit(
  store: EventStore,
  prefix: string,
  out: Writable,
  now: Date = new Date(),
): Promise<AuditExportSummary> {
  const headPosition = await store.headPosition();
  const exportedAt = now.toISOString();
  let chunk = `${JSON.stringify({
    format: AUDIT_EXPORT_FORMAT,
    version: AUDIT_EXPORT_VERSION,
    prefix,
    exportedAt,
    headPosition: headPosition.toString(),
  })}\n`;
  const flush = async () => {
    const text = chunk;
    chunk = '';
    if (!out.write(text)) await once(out, 'drain');
  };
  let events = 0;
  let lastPosition = 0n;
  for await (const event of store.readAll({ streamPrefix: prefix })) {
    if (event.position > headPosition) break;
    chunk += `${auditEventLine(event)}\n`;
    events++;
    lastPosition = event.position;
    if (chunk.length >= CHUNK_CHARS) await flush();
  }
  // The trailer tells a complete file from one cut short (a full disk, an interrupted copy).
  chunk += `${JSON.stringify({ end: true, events, lastPosition: lastPosition.toString() })}\n`;
  await flush();
  return { prefix, headPosition, events, exportedAt };
}
