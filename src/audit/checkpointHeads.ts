import { KeyledgerError } from '../domain/errors.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { EventStore, RecordedEvent } from '../store/eventStore.js';
import { type CheckpointHead, compareStreams } from './checkpointFormat.js';
import { chainLinkOf, eventHash } from './hashChain.js';

/**
 * What the next checkpoint records: the heads of the streams written since the previous one, read
 * from the store with their links checked, since a checkpoint vouches for what it covers.
 */

/**
 * At most this many stream heads go into one checkpoint: an interval that touched more streams is
 * covered by several checkpoints, so no checkpoint event outgrows what a store accepts (EventStoreDB
 * refuses events over 16 MB by default; 4096 heads are about 700 kB).
 */
export const MAX_CHECKPOINT_HEADS = 4096;

/** An event that names a checkpoint (metadata `checkpoint`): the checkpoint stream must hold it. */
export interface MarkedEvent {
  readonly event: RecordedEvent;
  readonly checkpoint: bigint;
}

export interface CheckpointHeads {
  readonly covered: bigint;
  readonly heads: CheckpointHead[];
  /** The event naming the newest checkpoint (metadata `checkpoint`), if any does. */
  readonly marked: MarkedEvent | null;
}

/**
 * The heads of the streams written after `previous`, up to the store's head or to the event
 * before the one that would make more than MAX_CHECKPOINT_HEADS heads; null if only checkpoints
 * were written. A checkpoint vouches for what it covers, so the links of what it is about to cover
 * are checked first: a broken one is ERR_LEDGER_TAMPERED and nothing is written (verify says more).
 */
export async function readCheckpointHeads(
  store: Pick<EventStore, 'readAll' | 'readStream'>,
  names: Pick<StreamNames, 'prefix' | 'checkpoints'>,
  previous: bigint,
): Promise<CheckpointHeads | null> {
  const heads = new Map<string, CheckpointHead>();
  const firsts: RecordedEvent[] = [];
  let covered = previous;
  let marked: MarkedEvent | null = null;
  for await (const event of store.readAll({
    after: previous,
    streamPrefix: names.prefix,
  })) {
    if (event.streamName !== names.checkpoints) {
      const link = chainLinkOf(event.metadata);
      if (
        link.kind === 'chained' &&
        link.checkpoint !== undefined &&
        link.checkpoint > (marked?.checkpoint ?? -1n)
      )
        marked = { event, checkpoint: link.checkpoint };
      const before = heads.get(event.streamName);
      if (before === undefined && heads.size === MAX_CHECKPOINT_HEADS) break;
      if (before === undefined) firsts.push(event);
      else if (before.revision + 1n === event.revision) checkLink(event, before.hash);
      const hash = eventHash(event);
      heads.set(event.streamName, {
        stream: event.streamName,
        revision: event.revision,
        position: event.position,
        hash,
      });
    }
    covered = event.position;
  }
  if (heads.size === 0) return null;
  for (const first of firsts) {
    if (first.revision === 0n) continue;
    // The event before it is older than the previous checkpoint (or deleted with its stream).
    const [before] = await store.readStream(first.streamName, {
      fromRevision: first.revision - 1n,
    });
    if (before !== undefined && before.revision === first.revision - 1n) checkLink(first, eventHash(before));
  }
  return {
    covered,
    heads: [...heads.values()].sort((a, b) => compareStreams(a.stream, b.stream)),
    marked,
  };
}

function checkLink(event: RecordedEvent, previousHash: string): void {
  const link = chainLinkOf(event.metadata);
  if (link.kind === 'legacy' || (link.kind === 'chained' && link.prevHash === previousHash)) return;
  throw new KeyledgerError(
    'ERR_LEDGER_TAMPERED',
    `${event.streamName}@${event.revision} (position ${event.position}) does not link to the event before it; no checkpoint was written: run keyledger verify`,
    { stream: event.streamName, revision: event.revision.toString(), position: event.position.toString() },
  );
}

export function missingCheckpoint(stream: string, marked: MarkedEvent): KeyledgerError {
  const { event, checkpoint } = marked;
  return new KeyledgerError(
    'ERR_LEDGER_TAMPERED',
    `${event.streamName}@${event.revision} (position ${event.position}) names checkpoint ${stream}@${checkpoint}, which the checkpoint stream does not hold; no checkpoint was written: run keyledger verify`,
    { stream: event.streamName, revision: event.revision.toString(), position: event.position.toString() },
  );
}
