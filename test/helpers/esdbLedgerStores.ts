import { useEsdbLedgerStores } from './ledgerStores.js';

// Imported for its effect, first, by test/ledger/ledgerEsdb.test.ts: the ledger suites imported
// after it get EventStoreDB stores. A static import, not a top-level await: while a test file
// awaits, node:test may consider the file done and run its root `after` hook before the suites exist.
useEsdbLedgerStores();
