/**
 * A subscriber process for the cross-process invalidation bench: a Ledger on the shared sqlite
 * file that records, for every event it applies, the wall-clock time right after the projector
 * applied it (and ran the cache invalidations for it): `performance.timeOrigin + performance.now()`.
 * It keeps the scope's resolution warm in L1, so every rotation has an entry to invalidate.
 *
 * argv: <db> <keystore> <pollIntervalMs> <custodian-b64> <namespace>
 * stdin, one command a line; stdout, one JSON line each:
 *   warm          → {"keyId": "<the ACTIVE key resolved now>"}
 *   wait <pos>    → {"applied": "<position>"} once applied
 *   report        → {"positions": [...], "times": [...]} every applied event so far
 *   exit
 */
import { createInterface } from 'node:readline';
import { Ledger } from '../../src/ledger/ledger.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { keystoreProvider, observedStore } from './common.js';

const [dbPath = '', keystorePath = '', poll = '20', cust = '', ns = ''] = process.argv.slice(2);
const positions: number[] = [];
const times: number[] = [];
let rewarm = false;

const sqlite = SqliteEventStore.open(dbPath, { pollIntervalMs: Number(poll) });
const store = observedStore(sqlite, {
  onDelivered: (event) => {
    times.push(performance.timeOrigin + performance.now());
    positions.push(Number(event.position));
    if (!rewarm) {
      rewarm = true;
      setImmediate(() => {
        rewarm = false;
        void ledger.resolver.resolveActive(target).catch(() => undefined);
      });
    }
  },
});
const ledger = await Ledger.open({
  store,
  provider: keystoreProvider(keystorePath, process.cwd()),
  actor: `bench-child-${process.pid}`,
});
const target = ledger.resolver.target(cust, [ns]);
const send = (value: unknown) =>
  process.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
send({ ready: true });

for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(' ');
  try {
    if (command === 'warm') {
      send({ keyId: (await ledger.resolver.resolveActive(target))?.key.keyId ?? null });
    } else if (command === 'wait') {
      await ledger.waitForPosition(BigInt(arg ?? '0'));
      send({ applied: ledger.position });
    } else if (command === 'report') {
      send({ positions, times });
    } else if (command === 'exit') {
      break;
    }
  } catch (error) {
    send({ error: (error as { code?: string }).code ?? String(error) });
  }
}
await ledger.close();
await sqlite.close();
