import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { KeyledgerClient } from '../../src/client/keyledgerClient.js';
import { keyScope } from '../../src/domain/identities.js';
import { type ContractServer, startContractServer } from '../helpers/contractServer.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';

/**
 * KeyledgerClient against a real server, beyond the contract suite: authentication schemes, TLS
 * trust, per-tenant decrypt, and events$ resuming across a connection cut by a proxy.
 */
const T1 = Buffer.from('tenant-1').toString('base64');
const T2 = Buffer.from('tenant-2').toString('base64');

async function codeOf(call: () => Promise<unknown>): Promise<{ code?: string; details?: unknown }> {
  try {
    await call();
  } catch (error) {
    return error as { code?: string; details?: unknown };
  }
  assert.fail('expected a failure');
}

describe('KeyledgerClient against a real server', () => {
  let s: ContractServer;
  let admin: KeyledgerClient;
  const clients: KeyledgerClient[] = [];
  const client = (
    options: Omit<ConstructorParameters<typeof KeyledgerClient>[0], 'url'> & { url?: string },
  ) => {
    const made = new KeyledgerClient({ url: s.url, ca: s.ca, ...options });
    clients.push(made);
    return made;
  };

  before(async () => {
    s = await startContractServer();
    admin = client({ token: await s.jwt('ops', ['admin:*']) });
    for (const t of [T1, T2]) {
      s.ledger.provider.setKey(keyScope(t, 'orders'), `${t}-k1`);
      await admin.call('enable-key-management', { scope: `${t}:orders` });
    }
  });
  after(async () => {
    for (const c of clients) await c.close();
    await s?.stop();
  });

  it('authenticates with a client certificate (mTLS): its subject is the actor', async () => {
    const mtls = client({ cert: s.certs.pem(s.certs.clientCert), key: s.certs.pem(s.certs.clientKey) });
    s.ledger.provider.setKey(keyScope(T1, 'orders'), 'by-cert');
    await mtls.call('rotate-managed-key', { scope: `${T1}:orders` }, { reason: 'by certificate' });
    const history = await admin.call('history', { scope: `${T1}:orders` });
    assert.equal(history.at(-1)?.type, 'ManagedKeyRotated');
    assert.equal(history.at(-1)?.actor, 'app-1');
    assert.equal(history.at(-1)?.reason, 'by certificate');
  });

  it('401 is ERR_UNAUTHENTICATED, 403 ERR_FORBIDDEN with the server’s details', async () => {
    const anonymous = await codeOf(() => client({}).call('list-scopes', {}));
    assert.equal(anonymous.code, 'ERR_UNAUTHENTICATED');
    const forged = await codeOf(() => client({ token: 'aaa.bbb.ccc' }).call('list-scopes', {}));
    assert.equal(forged.code, 'ERR_UNAUTHENTICATED');
    const reader = client({ token: await s.jwt('reader', [`read:${T1}`]) });
    const denied = await codeOf(() => reader.call('rotate-managed-key', { scope: `${T1}:orders` }));
    assert.equal(denied.code, 'ERR_FORBIDDEN');
    assert.deepEqual(denied.details, { principal: 'reader', permission: 'operate', custodian: T1 });
  });

  it('decrypt is authorised by the ciphertext’s custodian: another tenant’s is ERR_FORBIDDEN', async () => {
    const sealed = await admin.encrypt(
      { custodian: T2, namespace: ['orders'] },
      Buffer.from('tenant 2 data'),
    );
    const tenant1 = client({ token: await s.jwt('app-t1', [`decrypt:${T1}`, `encrypt:${T1}`]) });
    assert.equal((await codeOf(() => tenant1.decrypt({}, sealed.data))).code, 'ERR_FORBIDDEN');
    const own = await tenant1.encrypt({ custodian: T1, namespace: ['orders'] }, Buffer.from('mine'));
    assert.equal((await tenant1.decrypt({}, own.data)).data.toString(), 'mine');
  });

  it('a server certificate of an untrusted CA is ERR_SERVER_UNAVAILABLE, naming a TLS code', async () => {
    const untrusted = client({
      token: await s.jwt('ops', ['admin:*']),
      ca: s.certs.pem(s.certs.otherClientCert),
    });
    const error = await codeOf(() => untrusted.call('list-scopes', {}));
    assert.equal(error.code, 'ERR_SERVER_UNAVAILABLE');
    assert.match((error.details as { reason: string }).reason, /CERT|SIGNATURE|ISSUER/);
  });

  it('events$: unsubscribing closes the stream on the server', async () => {
    const watcher = client({ token: await s.jwt('short-watch', ['audit:*']) });
    const first = await firstValueFrom(watcher.events$({ from: 'start' }));
    assert.match(first.position, /^\d+$/);
    // The server logs an event stream when it ends: the client closed it.
    for (let i = 0; i < 50 && !s.log.some((e) => e.principal === 'short-watch'); i++) await delay(20);
    assert.ok(s.log.some((e) => e.path === '/v1/events' && e.principal === 'short-watch'));
  });

  it('events$ resumes after the connection is cut: no gap, no duplicate', async () => {
    let proxy: TcpProxy | null = null;
    try {
      proxy = await startTcpProxy(Number(new URL(s.url).port));
      const watcher = client({
        url: `https://127.0.0.1:${proxy.port}`,
        token: await s.jwt('auditor', ['audit:*']),
      });
      const scopes = ['a', 'b', 'c', 'd'].map((n) => `${T1}:live-${n}`);
      const seen = firstValueFrom(
        watcher.events$({ from: 'start', types: 'KeyManagementEnabled' }).pipe(
          filter((e) => scopes.some((sc) => sc === `${e.data.custodian}:${e.data.namespace}`)),
          take(4),
          toArray(),
        ),
      );
      const enable = async (scope: string) => {
        const [custodian, namespace] = scope.split(':') as [string, string];
        s.ledger.provider.setKey(keyScope(custodian, namespace), `${scope}-k`);
        await admin.call('enable-key-management', { scope });
      };
      await enable(scopes[0] ?? '');
      await enable(scopes[1] ?? '');
      await delay(200);
      proxy.drop();
      await enable(scopes[2] ?? '');
      await delay(100);
      proxy.drop();
      await enable(scopes[3] ?? '');
      const events = await seen;
      assert.deepEqual(
        events.map((e) => `${e.data.custodian}:${e.data.namespace}`),
        scopes,
      );
      await delay(100);
      const streams = s.log.filter((e) => e.path === '/v1/events' && e.principal === 'auditor');
      assert.ok(streams.length >= 2, `the stream was reopened (${streams.length} ended)`);
      const positions = events.map((e) => BigInt(e.position));
      assert.deepEqual(
        [...positions].sort((a, b) => (a < b ? -1 : 1)),
        positions,
      );
    } finally {
      await proxy?.close();
    }
  });
});
