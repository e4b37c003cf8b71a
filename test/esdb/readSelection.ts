import type { EventLog, StoredEvent } from './eventLog.js';
import { type EventFilter, filterMatches, type ReadRequest } from './readRequest.js';

/**
 * Which events a one-off (non-subscription) read returns. Forward reads include their start;
 * backward reads from a revision include it, backward reads of `$all` from a position exclude it
 * (the position names where the previous page ended).
 */

export type StreamReadResult =
  | { readonly kind: 'not_found' }
  | { readonly kind: 'deleted' }
  | { readonly kind: 'events'; readonly events: readonly StoredEvent[] };

export function selectStreamRead(
  log: EventLog,
  target: Extract<ReadRequest['target'], { kind: 'stream' }>,
  direction: ReadRequest['direction'],
  count: bigint,
): StreamReadResult {
  const view = log.streamView(target.streamName);
  if (view.kind !== 'events') return view;
  const from = target.from;
  let selected: StoredEvent[];
  if (direction === 'forwards') {
    selected =
      from.kind === 'end'
        ? []
        : view.events.filter((event) => from.kind === 'start' || event.revision >= from.revision);
  } else {
    selected = view.events
      .filter(
        (event) => from.kind === 'end' || event.revision <= (from.kind === 'start' ? 0n : from.revision),
      )
      .reverse();
  }
  return { kind: 'events', events: take(selected, count) };
}

export function selectAllRead(
  log: EventLog,
  target: Extract<ReadRequest['target'], { kind: 'all' }>,
  direction: ReadRequest['direction'],
  count: bigint,
  filter: EventFilter | undefined,
): readonly StoredEvent[] {
  const from = target.from;
  const matches = (event: StoredEvent) =>
    filter === undefined || filterMatches(filter, event.streamName, event.type);
  let selected: StoredEvent[];
  if (direction === 'forwards') {
    selected =
      from.kind === 'end'
        ? []
        : log.records.filter((event) => from.kind === 'start' || event.position >= from.position);
  } else {
    selected =
      from.kind === 'start'
        ? []
        : log.records.filter((event) => from.kind === 'end' || event.position < from.position).reverse();
  }
  return take(selected.filter(matches), count);
}

function take(events: StoredEvent[], count: bigint): StoredEvent[] {
  return count >= BigInt(events.length) ? events : events.slice(0, Number(count));
}
