/**
 * Stream metadata as the server applies it to stream reads: the latest event of `$$<stream>` holds a
 * JSON object whose `$maxCount`, `$maxAge` (seconds) and `$tb` (truncate before) hide events from
 * reads of the stream. `$all` is not affected: EventStoreDB keeps the events there until a scavenge.
 */

/** EventNumber.DeletedStream (long.MaxValue): the `$tb` a soft delete writes, and a tombstone's revision. */
export const DELETED_STREAM_REVISION = 9223372036854775807n;

export interface StreamMetadata {
  readonly maxCount?: bigint;
  readonly maxAgeSeconds?: bigint;
  readonly truncateBefore?: bigint;
}

export const NO_METADATA: StreamMetadata = {};

export function isMetastream(streamName: string): boolean {
  return streamName.startsWith('$$');
}

export function metastreamOf(streamName: string): string {
  return `$$${streamName}`;
}

export function originalStreamOf(metastreamName: string): string {
  return metastreamName.slice(2);
}

/** Parses one metadata event body; anything that is not a JSON object counts as no metadata. */
export function parseStreamMetadata(data: Uint8Array): StreamMetadata {
  const raw = parseJsonObject(data);
  if (raw === undefined) return NO_METADATA;
  return {
    ...optionalInteger('maxCount', raw.$maxCount),
    ...optionalInteger('maxAgeSeconds', raw.$maxAge),
    ...optionalInteger('truncateBefore', raw.$tb),
  };
}

export function parseJsonObject(data: Uint8Array): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // Metadata streams may hold non-JSON bytes; the server then ignores them, and so do we.
  }
  return undefined;
}

/**
 * JSON numbers above 2^53 lose precision in JSON.parse, so a `$tb` of long.MaxValue comes back as
 * 9223372036854775808; anything at or above 2^63 - 1 is read as "soft deleted".
 */
function optionalInteger<K extends keyof StreamMetadata>(key: K, value: unknown): Partial<StreamMetadata> {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return {};
  const asBigInt =
    value >= Number(DELETED_STREAM_REVISION) ? DELETED_STREAM_REVISION : BigInt(Math.floor(value));
  return { [key]: asBigInt };
}

/** Writes a metadata JSON body with `$tb` replaced, keeping every other key (soft delete / recreate). */
export function withTruncateBefore(data: Uint8Array | undefined, truncateBefore: bigint): Uint8Array {
  const raw = (data === undefined ? undefined : parseJsonObject(data)) ?? {};
  // JSON.stringify cannot print a bigint; splice the exact digits in so long.MaxValue survives.
  const placeholder = '__esdb_test_server_tb__';
  const json = JSON.stringify({ ...raw, $tb: placeholder }).replace(
    `"${placeholder}"`,
    truncateBefore.toString(),
  );
  return Buffer.from(json, 'utf8');
}
