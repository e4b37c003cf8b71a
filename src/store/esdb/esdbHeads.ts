import type { END, Position } from '@eventstore/db-client';
import type { EsdbCalls } from './esdbCalls.js';
import { esdbClient } from './esdbClient.js';
import { isBookkeepingStream, positionOf } from './esdbRecords.js';

/** Events per backwards page when headPosition looks past the store's own bookkeeping. */
const HEAD_PAGE = 100;

/**
 * Position of the last event in the store, not counting EventStoreDB's own streams (`$…`) nor
 * the adapter's snapshot streams: what a subscriber of the ledger can wait for.
 */
export async function headPosition(calls: EsdbCalls): Promise<bigint> {
  return calls.call('headPosition', async () => {
    let from: typeof END | Position = esdbClient().END;
    for (;;) {
      const page = await calls.readRaw(
        calls.client.readAll({ direction: esdbClient().BACKWARDS, fromPosition: from, maxCount: HEAD_PAGE }),
      );
      // A backwards read starts at (and includes) its position: the previous page's last event.
      const start = from;
      const older = page.filter(
        (event) => start === esdbClient().END || positionOf(event).commit < start.commit,
      );
      const found = older.find((event) => !isBookkeepingStream(event.streamId));
      if (found !== undefined) return positionOf(found).commit;
      const oldest = older[older.length - 1];
      if (oldest === undefined) return 0n;
      from = positionOf(oldest);
    }
  });
}

/** Position of the last record in `$all`, whatever its stream; 0n when the log is empty. */
export async function logHead(calls: EsdbCalls): Promise<bigint> {
  const [last] = await calls.readRaw(
    calls.client.readAll({ direction: esdbClient().BACKWARDS, fromPosition: esdbClient().END, maxCount: 1 }),
  );
  return last === undefined ? 0n : positionOf(last).commit;
}
