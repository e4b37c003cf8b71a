import { KeyledgerError } from '../../domain/errors.js';
import { toJsonText } from '../adapterSupport.js';
import type { JsonValue, RecordedEvent, Snapshot } from '../eventStore.js';
import type { EsdbCalls } from './esdbCalls.js';
import { esdbClient } from './esdbClient.js';
import { isMissingStream } from './esdbErrors.js';
import { SNAPSHOT_EVENT_TYPE, snapshotStreamOf } from './esdbRecords.js';

/** The esdb adapter's snapshots: the last event of a stream of their own (see esdbRecords.ts). */
export class EsdbSnapshots {
  readonly #calls: EsdbCalls;
  /** Snapshot streams whose $maxCount this process has set. */
  readonly #trimmedSnapshots = new Set<string>();

  constructor(calls: EsdbCalls) {
    this.#calls = calls;
  }

  async load(name: string): Promise<Snapshot | null> {
    this.#calls.assertOpen();
    return this.#calls.call('loadSnapshot', async () => {
      const last = await this.#lastSnapshotEvent(snapshotStreamOf(name));
      return last === undefined ? null : this.#toSnapshot(last);
    });
  }

  async save(name: string, snapshot: Snapshot): Promise<void> {
    this.#calls.assertOpen();
    toJsonText(snapshot.state, 'snapshot state');
    const stream = snapshotStreamOf(name);
    const event = esdbClient().jsonEvent({
      type: SNAPSHOT_EVENT_TYPE,
      data: { position: snapshot.position.toString(), state: snapshot.state } as Record<string, unknown>,
    });
    await this.#calls.call('saveSnapshot', async () => {
      // Only the latest snapshot is ever read; the server may drop older ones (at a scavenge).
      if (!this.#trimmedSnapshots.has(stream)) {
        await this.#calls.client.setStreamMetadata(stream, { maxCount: 1 });
        this.#trimmedSnapshots.add(stream);
      }
      // A newer snapshot is never replaced (a lagging process must not put back what a later one,
      // say a crypto-shredding, removed): compare, then append at the revision compared against.
      for (;;) {
        const last = await this.#lastSnapshotEvent(stream);
        if (last !== undefined && this.#toSnapshot(last).position > snapshot.position) return;
        try {
          await this.#calls.client.appendToStream(stream, event, {
            expectedRevision: last === undefined ? esdbClient().NO_STREAM : last.revision,
          });
          return;
        } catch (error) {
          if (!(error instanceof esdbClient().WrongExpectedVersionError)) throw error;
        }
      }
    });
  }

  async #lastSnapshotEvent(stream: string): Promise<RecordedEvent | undefined> {
    try {
      const [last] = await this.#calls.readFully(
        this.#calls.client.readStream(stream, {
          direction: esdbClient().BACKWARDS,
          fromRevision: esdbClient().END,
          maxCount: 1,
        }),
      );
      return last;
    } catch (error) {
      if (isMissingStream(error)) return undefined;
      throw error;
    }
  }

  #toSnapshot(recorded: RecordedEvent): Snapshot {
    const { position, state } = recorded.data as { position?: unknown; state?: JsonValue };
    if (recorded.type !== SNAPSHOT_EVENT_TYPE || typeof position !== 'string' || !/^\d+$/.test(position)) {
      throw new KeyledgerError(
        'ERR_STORE',
        `snapshot stream ${recorded.streamName} holds an unreadable event`,
        {
          stream: recorded.streamName,
          revision: recorded.revision.toString(),
        },
      );
    }
    return { position: BigInt(position), state: state === undefined ? null : state };
  }
}
