import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../helpers/testServer.js';

const T1 = Buffer.from('tenant-1').toString('base64');

describe('the server: graceful shutdown', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ limits: { shutdownMs: 5000 } });
    const admin = await s.jwt('admin', ['admin:*']);
    const enabled = await s.call('POST', '/v1/enable-key-management', {
      token: admin,
      json: { scope: `${T1}:orders` },
    });
    assert.equal(enabled.status, 200, enabled.text);
  });
  after(async () => {
    await s?.stop();
  });

  it('lets a request in flight finish, then refuses new connections', async () => {
    const token = await s.jwt('app-1', [`encrypt:${T1}`]);
    const plaintext = randomBytes(256 * 1024);
    let closed = false;
    const answer = new Promise<{ status: number; bytes: number; trailer: string | undefined }>(
      (resolve, reject) => {
        const req = request(
          new URL(`/v1/encrypt?custodian=${encodeURIComponent(T1)}&namespace=orders`, s.url),
          {
            method: 'POST',
            ca: s.certs.pem(s.certs.caCert),
            agent: false,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
          },
          (res) => {
            let bytes = 0;
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
            });
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, bytes, trailer: res.trailers['keyledger-result'] }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.write(plaintext.subarray(0, 1024));
        // The shutdown begins while the body is still coming.
        setTimeout(async () => {
          const closing = s.server.close().then(() => {
            closed = true;
          });
          await sleep(200);
          assert.equal(closed, false, 'the shutdown waits for the request in flight');
          req.end(plaintext.subarray(1024));
          await closing;
        }, 100);
      },
    );
    const got = await answer;
    assert.equal(got.status, 200);
    assert.ok(got.bytes > plaintext.length);
    assert.ok(got.trailer, 'the request finished with its result');
    await sleep(50);
    assert.equal(closed, true);
    await assert.rejects(s.call('GET', '/healthz'));
  });
});
