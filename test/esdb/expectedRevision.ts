/**
 * The four forms of expected revision the v1 protocol carries (Append, BatchAppend, Delete, Tombstone),
 * and the numeric codes EventStoreDB puts in its `expected-version` error trailer for them.
 */
export type ExpectedRevision =
  | { readonly kind: 'any' }
  | { readonly kind: 'no_stream' }
  | { readonly kind: 'stream_exists' }
  | { readonly kind: 'revision'; readonly revision: bigint };

export const ANY_REVISION: ExpectedRevision = { kind: 'any' };

/** EventStoreDB's ExpectedVersion constants, as the server writes them into error trailers. */
export function expectedVersionCode(expected: ExpectedRevision): bigint {
  switch (expected.kind) {
    case 'any':
      return -2n;
    case 'no_stream':
      return -1n;
    case 'stream_exists':
      return -4n;
    case 'revision':
      return expected.revision;
    default: {
      const unreachable: never = expected;
      throw new TypeError(`unknown expected revision ${JSON.stringify(unreachable)}`);
    }
  }
}

/** The option cases of AppendReq/DeleteReq/TombstoneReq Options share these numbers. */
export interface ExpectedRevisionOptions {
  hasRevision(): boolean;
  getRevision(): string;
  hasNoStream(): boolean;
  hasAny(): boolean;
  hasStreamExists(): boolean;
}

export function expectedRevisionOf(options: ExpectedRevisionOptions): ExpectedRevision {
  if (options.hasRevision()) return { kind: 'revision', revision: BigInt(options.getRevision()) };
  if (options.hasNoStream()) return { kind: 'no_stream' };
  if (options.hasStreamExists()) return { kind: 'stream_exists' };
  return ANY_REVISION;
}
