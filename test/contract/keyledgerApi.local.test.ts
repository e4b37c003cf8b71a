import { LedgerApi } from '../../src/operations/ledgerApi.js';
import { contractLedger, testKeyledgerApi } from './keyledgerApi.contract.js';

// The in-process target: LedgerApi over a Ledger, with the actor given at construction.
testKeyledgerApi('in process (LedgerApi)', async () => {
  const opened = await contractLedger();
  const api = new LedgerApi({ ledger: opened.ledger, actor: 'contract-tester', store: opened.access });
  return {
    api,
    provider: opened.provider,
    actor: 'contract-tester',
    head: opened.head,
    close: async () => {
      await api.close();
      await opened.close();
    },
  };
});
