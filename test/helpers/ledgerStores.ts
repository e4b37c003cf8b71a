import { after } from 'node:test';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { startEsdbTestServer } from '../esdb/esdbTestServer.js';

/**
 * The store the ledger suites run on. They ask newLedgerStore() for a fresh, empty store wherever
 * they used to make a MemoryEventStore; by default that is what they get. test/ledger/ledgerEsdb.test.ts
 * switches to EventStoreDB before importing the suites, so the same tests run again, each store on
 * a protocol-level test server of its own (an empty store per test, as with memory).
 */
type LedgerStoreKind = 'memory' | 'esdb';

let kind: LedgerStoreKind = 'memory';
const toClose: (() => Promise<void>)[] = [];

export function ledgerStoreKind(): LedgerStoreKind {
  return kind;
}

/** A fresh, empty store of the selected kind. */
export async function newLedgerStore(): Promise<EventStore> {
  switch (kind) {
    case 'memory':
      return new MemoryEventStore();
    case 'esdb': {
      const server = await startEsdbTestServer();
      const store = EsdbEventStore.open(server.connectionString);
      // The suites close their ledgers, not their stores: everything goes when the file ends.
      toClose.push(async () => {
        await store.close();
        await server.close();
      });
      return store;
    }
    default: {
      const unexpected: never = kind;
      throw new TypeError(`unknown store kind ${String(unexpected)}`);
    }
  }
}

/** Call at the top of a test file, before importing the suites: their stores become EventStoreDB ones. */
export function useEsdbLedgerStores(): void {
  kind = 'esdb';
  after(async () => {
    const closing = toClose.splice(0);
    await Promise.all(closing.map((close) => close()));
  });
}
