import { KeyledgerClient } from '../../src/client/keyledgerClient.js';
import { startContractServer } from '../helpers/contractServer.js';
import { testKeyledgerApi } from './keyledgerApi.contract.js';

// The remote target: KeyledgerClient over HTTPS to a real server (createServer on 127.0.0.1:0),
// authenticated by a JWT whose subject is the actor the server records.
testKeyledgerApi('remote (KeyledgerClient over HTTPS)', async () => {
  const s = await startContractServer();
  const api = new KeyledgerClient({ url: s.url, token: await s.jwt('contract-app', ['admin:*']), ca: s.ca });
  return {
    api,
    provider: s.ledger.provider,
    actor: 'contract-app',
    head: s.ledger.head,
    close: async () => {
      await api.close();
      await s.stop();
    },
  };
});
