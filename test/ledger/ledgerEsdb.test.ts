/**
 * The ledger suites again, on the EventStoreDB adapter: KeymetaAdmin operations (bad input writes
 * nothing, lost races are re-decided) and key resolution with cache invalidation flowing through
 * the store's subscription to other ledger instances. Every store these suites ask for is an
 * EsdbEventStore on a protocol-level test server of its own (test/esdb), closed when the file ends.
 */
import '../helpers/esdbLedgerStores.js';
import './keymetaAdmin.test.js';
import './keyResolver.test.js';
