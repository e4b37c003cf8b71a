import { z } from 'zod';
import { eventDataSchemas } from '../domain/events.js';
import type { JsonObject } from '../store/eventStore.js';
import { eventHashPreimage, type HashableEvent } from './hashChain.js';

/**
 * LedgerCheckpointed events (docs/formats.md, "Checkpoint"): the head of every stream written in
 * (previousPosition, coveredPosition], and a MAC under the system key. The chain of the checkpoint
 * stream links each checkpoint to the one before, so the MAC of the newest one vouches for all.
 */

export const CHECKPOINT_EVENT_TYPE = 'LedgerCheckpointed';

/** HKDF info of the checkpoint MAC key (SystemKeyHandle.mac): nothing else is MACed under it. */
export const CHECKPOINT_MAC_LABEL = 'keyledger checkpoint mac v1';

export interface CheckpointHead {
  readonly stream: string;
  readonly revision: bigint;
  readonly position: bigint;
  readonly hash: string;
}

export interface Checkpoint {
  readonly previousPosition: bigint;
  readonly coveredPosition: bigint;
  /** Sorted by stream name (UTF-16 code units), one per stream. */
  readonly heads: readonly CheckpointHead[];
  /** The system key whose derived key made `mac`. */
  readonly stkIdentity: string;
  /** hex(HMAC-SHA256), 64 digits. */
  readonly mac: string;
}

/** The checkpoint in stored data, or why it is not one. */
export function parseCheckpoint(data: unknown): Checkpoint | { readonly invalid: string } {
  const parsed = eventDataSchemas.LedgerCheckpointed.safeParse(data);
  if (!parsed.success) return { invalid: z.prettifyError(parsed.error) };
  const d = parsed.data;
  return {
    previousPosition: BigInt(d.previousPosition),
    coveredPosition: BigInt(d.coveredPosition),
    heads: d.heads.map((h) => ({
      stream: h.stream,
      revision: BigInt(h.revision),
      position: BigInt(h.position),
      hash: h.hash,
    })),
    stkIdentity: d.stkIdentity,
    mac: d.mac,
  };
}

/** The event data of a checkpoint; `mac` null leaves the member out (what the MAC is computed over). */
export function checkpointData(checkpoint: Omit<Checkpoint, 'mac'>, mac: string | null): JsonObject {
  const data = {
    previousPosition: checkpoint.previousPosition.toString(),
    coveredPosition: checkpoint.coveredPosition.toString(),
    heads: checkpoint.heads.map((h) => ({
      stream: h.stream,
      revision: h.revision.toString(),
      position: h.position.toString(),
      hash: h.hash,
    })),
    stkIdentity: checkpoint.stkIdentity,
  };
  return mac === null ? data : { ...data, mac };
}

/**
 * What the MAC is computed over: the event's hash preimage (stream, id, type, data, metadata with
 * its prevHash) with the `mac` member left out of the data. It binds the checkpoint to its place in
 * the checkpoint stream and to this ledger's stream names.
 */
export function checkpointMacMessage(event: HashableEvent): Buffer {
  const data = { ...(event.data as Record<string, unknown>) };
  delete data.mac;
  return eventHashPreimage({ ...event, data });
}

/** Orders heads as the format requires (and as canonical JSON orders names). */
export function compareStreams(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
