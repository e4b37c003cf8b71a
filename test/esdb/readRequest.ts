import type { ReadReq } from '@eventstore/db-client/generated/streams_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import { streamNameOf } from './protoConvert.js';

/** A Streams.Read request in plain terms: what to read, which way, how much, and whether to stay live. */
export interface ReadRequest {
  readonly target: ReadTarget;
  readonly direction: 'forwards' | 'backwards';
  /** How many events a read returns at most; undefined for a subscription. */
  readonly count: bigint | undefined;
  readonly subscription: boolean;
  readonly filter: EventFilter | undefined;
  readonly structuredUuid: boolean;
}

export type ReadTarget =
  | {
      readonly kind: 'stream';
      readonly streamName: string;
      readonly from:
        | { readonly kind: 'start' }
        | { readonly kind: 'end' }
        | { readonly kind: 'revision'; readonly revision: bigint };
    }
  | {
      readonly kind: 'all';
      readonly from:
        | { readonly kind: 'start' }
        | { readonly kind: 'end' }
        | { readonly kind: 'position'; readonly position: bigint };
    };

export interface EventFilter {
  readonly on: 'stream_name' | 'event_type';
  readonly prefixes: readonly string[];
  readonly regex: RegExp | undefined;
  /** Checkpoint after this many events scanned: maxSearchWindow × checkpointIntervalMultiplier. */
  readonly checkpointInterval: number;
}

/**
 * The search window the server uses when the client sends `count` instead of `max` (no
 * maxSearchWindow given): EventStoreDB's default filtered-read page size.
 */
export const DEFAULT_MAX_SEARCH_WINDOW = 32;

/** Parses the request, or returns a message for an INVALID_ARGUMENT reply. */
export function parseReadRequest(request: ReadReq): ReadRequest | string {
  const options = request.getOptions();
  if (options === undefined) return 'ReadReq.options is required';
  const Options = streamsPb.ReadReq.Options;
  const target = parseTarget(options);
  if (typeof target === 'string') return target;
  const filter = options.hasFilter() ? parseFilter(options.getFilter()) : undefined;
  if (typeof filter === 'string') return filter;
  if (filter !== undefined && target.kind !== 'all') return 'filters apply to $all only';
  const subscription = options.getCountOptionCase() === Options.CountOptionCase.SUBSCRIPTION;
  return {
    target,
    direction: options.getReadDirection() === Options.ReadDirection.BACKWARDS ? 'backwards' : 'forwards',
    count: subscription ? undefined : BigInt(options.getCount() || '0'),
    subscription,
    filter,
    structuredUuid: options.getUuidOption()?.hasStructured() ?? false,
  };
}

function parseTarget(options: ReadReq.Options): ReadTarget | string {
  const stream = options.getStream();
  if (stream !== undefined) {
    const streamName = streamNameOf(stream.getStreamIdentifier());
    if (stream.hasRevision()) {
      return {
        kind: 'stream',
        streamName,
        from: { kind: 'revision', revision: BigInt(stream.getRevision()) },
      };
    }
    return { kind: 'stream', streamName, from: { kind: stream.hasEnd() ? 'end' : 'start' } };
  }
  const all = options.getAll();
  if (all === undefined) return 'ReadReq.options needs stream or all';
  const position = all.getPosition();
  if (position !== undefined) {
    // commit == prepare in this log, so either names the record; the prepare position is the one used.
    return { kind: 'all', from: { kind: 'position', position: BigInt(position.getPreparePosition()) } };
  }
  return { kind: 'all', from: { kind: all.hasEnd() ? 'end' : 'start' } };
}

function parseFilter(filter: ReadReq.Options.FilterOptions | undefined): EventFilter | string {
  if (filter === undefined) return 'filter options missing';
  const onStream = filter.hasStreamIdentifier();
  const expression = onStream ? filter.getStreamIdentifier() : filter.getEventType();
  if (expression === undefined) return 'a filter needs a stream identifier or event type expression';
  let regex: RegExp | undefined;
  if (expression.getRegex() !== '') {
    try {
      regex = new RegExp(expression.getRegex());
    } catch {
      return `invalid filter regex ${expression.getRegex()}`;
    }
  }
  const window = filter.hasMax() ? filter.getMax() : DEFAULT_MAX_SEARCH_WINDOW;
  const multiplier = filter.getCheckpointintervalmultiplier();
  if (window <= 0 || multiplier <= 0)
    return 'maxSearchWindow and checkpointIntervalMultiplier must be positive';
  return {
    on: onStream ? 'stream_name' : 'event_type',
    prefixes: expression.getPrefixList(),
    regex,
    checkpointInterval: window * multiplier,
  };
}

/** Prefixes win over a regex when both are given, as the server's filter factory chooses. */
export function filterMatches(filter: EventFilter, streamName: string, eventType: string): boolean {
  const subject = filter.on === 'stream_name' ? streamName : eventType;
  if (filter.prefixes.length > 0) return filter.prefixes.some((prefix) => subject.startsWith(prefix));
  return filter.regex === undefined || filter.regex.test(subject);
}
