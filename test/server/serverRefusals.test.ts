import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { type Answer, startTestServer, type TestServer } from '../helpers/testServer.js';

/** tenant-1 in base64. */
const T1 = 'dGVuYW50LTE=';

function problem(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
  assert.equal(answer.json.code, code);
  assert.equal(answer.json.status, status);
  assert.equal(answer.json.requestId, answer.headers['x-request-id']);
}

/**
 * Issue 12: strangers learn nothing of the API and read nothing of its operation (every request
 * authenticated, deny by default). An unmatched /v1 request is refused before its body is read; the
 * metrics are an audit read like any other.
 */
describe('the server: refusals before routes and bodies, /metrics behind auth', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ limits: { jsonBodyBytes: 4096 } });
  });
  after(async () => {
    await s?.stop();
  });

  /**
   * Headers that announce a body which is never sent: what the server answered within `waitMs`
   * (a server that waited for the body would answer nothing, or 408 much later).
   */
  const headersOnly = (head: string, waitMs = 3000) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port: Number(new URL(s.url).port),
        ca: s.certs.pem(s.certs.caCert),
      });
      let text = '';
      const done = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      };
      const timer = setTimeout(done, waitMs);
      socket.on('secureConnect', () => socket.write(head));
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        // The whole answer is in once its body (content-length) is.
        const end = text.indexOf('\r\n\r\n');
        const length = Number(/^content-length: *(\d+)$/im.exec(text)?.[1] ?? Number.NaN);
        if (end > 0 && text.length >= end + 4 + length) done();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return;
        clearTimeout(timer);
        reject(error);
      });
      socket.on('close', done);
    });

  describe('an unmatched /v1 request, unauthenticated: 401 before its body is read', () => {
    const unmatched: readonly [string, string][] = [
      ['POST', '/v1/nope'],
      ['POST', '/v1/init'],
      ['POST', '/v1'],
      ['PUT', '/v1/encrypt'],
      ['DELETE', '/v1/list-scopes'],
      ['GET', '/v1/encrypt?custodian=x'],
      ['POST', '/v1/events'],
    ];
    for (const [method, path] of unmatched) {
      it(`${method} ${path}: a body that is not JSON, too large, or of an unknown type changes nothing`, async () => {
        const head = await s.head();
        const entries = s.log.length;
        problem(
          await s.call(method, path, { body: Buffer.from('{"x":'), contentType: 'application/json' }),
          401,
          'ERR_UNAUTHENTICATED',
        );
        problem(await s.call(method, path, { json: { x: 'y'.repeat(8192) } }), 401, 'ERR_UNAUTHENTICATED');
        problem(
          await s.call(method, path, { body: Buffer.from('<a/>'), contentType: 'text/xml' }),
          401,
          'ERR_UNAUTHENTICATED',
        );
        const refused = await s.call(method, path, { token: 'klt_not-a-token', json: {} });
        problem(refused, 401, 'ERR_UNAUTHENTICATED');
        assert.equal((await s.logEntry(refused.headers['x-request-id'])).principal, null);
        assert.equal(await s.head(), head, 'nothing written');
        assert.ok(s.log.length > entries, 'each refusal is logged');
      });
    }

    it('answers without waiting for a body that never comes', async () => {
      const head = await s.head();
      const host = new URL(s.url).host;
      const text = await headersOnly(
        `POST /v1/nope HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n`,
      );
      assert.match(text, /^HTTP\/1\.1 401 /, text.slice(0, 300));
      assert.match(text, /"code":"ERR_UNAUTHENTICATED"/);
      assert.equal(await s.head(), head);
    });

    it('authenticated: 404 ERR_NOT_FOUND, the same for a known route with another method', async () => {
      const token = await s.jwt('ops', ['admin:*']);
      const head = await s.head();
      for (const [method, path] of [
        ['POST', '/v1/nope'],
        ['GET', '/v1/encrypt'],
        ['PUT', '/v1/list-scopes'],
      ] as const) {
        const answer = await s.call(method, path, method === 'GET' ? { token } : { token, json: {} });
        problem(answer, 404, 'ERR_NOT_FOUND');
        assert.equal((await s.logEntry(answer.headers['x-request-id'])).principal, 'ops');
      }
      assert.equal(await s.head(), head);
    });

    it('outside /v1 an unknown path is a 404 to anyone; the open routes stay open', async () => {
      problem(await s.call('GET', '/nope'), 404, 'ERR_NOT_FOUND');
      assert.equal((await s.call('GET', '/healthz')).status, 200);
      assert.equal((await s.call('GET', '/readyz')).status, 200);
      assert.equal((await s.call('GET', '/v1/openapi.json')).status, 200);
    });
  });

  describe('GET /metrics: an authenticated principal with audit over every custodian', () => {
    it('401 without credentials or with bad ones, counted as auth failures', async () => {
      const head = await s.head();
      problem(await s.call('GET', '/metrics'), 401, 'ERR_UNAUTHENTICATED');
      const bad = await s.call('GET', '/metrics', { token: 'klt_not-a-token' });
      problem(bad, 401, 'ERR_UNAUTHENTICATED');
      assert.equal((await s.logEntry(bad.headers['x-request-id'])).principal, null);
      assert.equal(await s.head(), head);
    });

    it('403 for a principal without audit, or with audit on one custodian only', async () => {
      const head = await s.head();
      for (const grants of [['read:*'], ['encrypt:*', 'operate:*'], [`audit:${T1}`]]) {
        const answer = await s.call('GET', '/metrics', { token: await s.jwt('reader', grants) });
        problem(answer, 403, 'ERR_FORBIDDEN');
        assert.equal(answer.json.details.permission, 'audit');
        assert.equal(answer.json.details.custodian, null);
        assert.ok(!answer.text.includes('keyledger_http_requests_total'));
      }
      assert.equal(await s.head(), head);
    });

    it('200 Prometheus text for audit:* (a JWT, or an API token as a scraper holds it) and for admin:*', async () => {
      const admin = await s.jwt('admin', ['admin:*']);
      const created = await s.call('POST', '/v1/token-create', {
        token: admin,
        json: { principal: 'prometheus', grant: ['audit:*'] },
      });
      assert.equal(created.status, 200, created.text);
      for (const token of [created.json.token as string, await s.jwt('auditor', ['audit:*']), admin]) {
        const answer = await s.call('GET', '/metrics', { token });
        assert.equal(answer.status, 200, answer.text);
        assert.match(String(answer.headers['content-type']), /^text\/plain/);
        assert.match(answer.text, /keyledger_auth_failures_total\{scheme="token",reason="[a-z-]+"\} [1-9]/);
        assert.match(
          answer.text,
          /keyledger_http_requests_total\{method="GET",route="\/metrics",status="401"\} [1-9]/,
        );
      }
      const doc = (await s.call('GET', '/v1/openapi.json')).json;
      assert.equal(doc.paths['/metrics'].get['x-keyledger-permission'], 'audit');
      assert.ok(doc.paths['/metrics'].get.responses['401']);
      assert.deepEqual(doc.paths['/healthz'].get.security, []);
      const entry = s.log.findLast((e) => e.path === '/metrics' && e.status === 200);
      assert.equal(entry?.principal, 'admin');
    });
  });
});
