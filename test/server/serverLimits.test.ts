import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { servedOperations } from '../../src/server/servedOperations.js';
import { startTestServer, type TestServer } from '../helpers/testServer.js';

const T1 = Buffer.from('tenant-1').toString('base64');

describe('the server: limits, OpenAPI document, metrics, access log', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      limits: { requestTimeoutMs: 400, rateLimit: { max: 3, timeWindowMs: 60_000 } },
    });
  });
  after(async () => {
    await s?.stop();
  });

  it('429 with Retry-After once a principal is over its rate; others are not held back', async () => {
    const token = await s.jwt('busy', ['read:*']);
    for (let i = 0; i < 3; i++) {
      const answer = await s.call('POST', '/v1/list-scopes', { token, json: {} });
      assert.equal(answer.status, 200, answer.text);
    }
    const over = await s.call('POST', '/v1/list-scopes', { token, json: {} });
    assert.equal(over.status, 429, over.text);
    assert.equal(over.json.code, 'ERR_RATE_LIMITED');
    assert.match(String(over.headers['retry-after']), /^\d+$/);
    assert.equal(over.headers['x-ratelimit-limit'], '3');
    assert.equal(over.headers['x-ratelimit-remaining'], '0');
    assert.equal(over.json.details.limit, 3);
    const other = await s.call('POST', '/v1/list-scopes', {
      token: await s.jwt('calm', ['read:*']),
      json: {},
    });
    assert.equal(other.status, 200);
    assert.equal((await s.call('GET', '/healthz')).status, 200);
  });

  it('the open routes are never limited; an allowed answer carries no x-ratelimit-* headers', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await s.call('GET', '/healthz')).status, 200);
      assert.equal((await s.call('GET', '/v1/openapi.json')).status, 200);
    }
    const token = await s.jwt('counted', ['read:*']);
    const allowed = await s.call('POST', '/v1/list-scopes', { token, json: {} });
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.headers['x-ratelimit-remaining'], undefined);
    assert.equal(allowed.headers['x-ratelimit-limit'], undefined);
  });

  it('408 with a problem body for a request whose body does not arrive in time; nothing written', async () => {
    const head = await s.head();
    const token = await s.jwt('slow', [`operate:${T1}`]);
    const answer = await new Promise<{ status: number; body: string; id: unknown }>((resolve, reject) => {
      const req = request(
        new URL('/v1/enable-key-management', s.url),
        {
          method: 'POST',
          ca: s.certs.pem(s.certs.caCert),
          agent: false,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'content-length': '100',
          },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => {
            body += chunk.toString('utf8');
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body, id: res.headers['x-request-id'] }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.write('{"scope":');
    });
    assert.equal(answer.status, 408, answer.body);
    assert.equal(JSON.parse(answer.body).code, 'ERR_REQUEST_TIMEOUT');
    assert.equal(JSON.parse(answer.body).requestId, answer.id);
    assert.equal(await s.head(), head);
  });

  it('serves an OpenAPI 3.1 document generated from the operation table, unauthenticated', async () => {
    const answer = await s.call('GET', '/v1/openapi.json');
    assert.equal(answer.status, 200, answer.text);
    const doc = answer.json;
    assert.equal(doc.openapi, '3.1.0');
    for (const op of servedOperations()) {
      const path = op.kind === 'events' ? '/v1/events' : `/v1/${op.name}`;
      assert.ok(doc.paths[path], `${path} documented`);
    }
    assert.equal(doc.paths['/v1/init'], undefined);
    const body = doc.paths['/v1/enable-key-management'].post.requestBody.content['application/json'].schema;
    assert.equal(body.type, 'object');
    assert.ok(body.properties.scope);
    assert.ok(doc.paths['/v1/encrypt'].post.requestBody.content['application/octet-stream']);
    assert.ok(doc.components.schemas.ERR_FORBIDDENDetails);
  });

  it('/metrics: Prometheus text from prom-client, per route and status, caches, event lag', async () => {
    const token = await s.jwt('metered', ['read:*']);
    await s.call('POST', '/v1/list-scopes', { token, json: {} });
    const answer = await s.call('GET', '/metrics', { token: await s.jwt('scraper', ['audit:*']) });
    assert.equal(answer.status, 200);
    assert.match(String(answer.headers['content-type']), /^text\/plain/);
    assert.match(
      answer.text,
      /keyledger_http_requests_total\{method="POST",route="\/v1\/list-scopes",status="200"\} \d+/,
    );
    assert.match(
      answer.text,
      /keyledger_http_request_duration_seconds_bucket\{le="0\.005",method="POST",route="\/v1\/list-scopes",status="200"\}/,
    );
    assert.match(
      answer.text,
      /keyledger_http_requests_total\{method="POST",route="\/v1\/list-scopes",status="429"\} 1/,
    );
    assert.match(answer.text, /keyledger_cache_hits_total\{layer="l1"\} \d+/);
    assert.match(answer.text, /keyledger_event_lag 0/);
  });

  it('logs one JSON entry per request with principal, operation, status and duration; never a token', async () => {
    const token = await s.jwt('logged', ['read:*']);
    const answer = await s.call('POST', '/v1/list-scopes', {
      token,
      json: {},
      headers: { 'x-request-id': 'log-1' },
    });
    assert.equal(answer.status, 200);
    const entry = await s.logEntry('log-1');
    assert.equal(s.log.filter((e) => e.requestId === 'log-1').length, 1);
    assert.equal(entry?.principal, 'logged');
    assert.equal(entry?.operation, 'list-scopes');
    assert.equal(entry?.status, 200);
    assert.equal(typeof entry?.durationMs, 'number');
    assert.ok(!JSON.stringify(s.log).includes(token));
    const refusal = s.log.find((e) => e.status === 429);
    assert.equal(refusal?.code, 'ERR_RATE_LIMITED');
  });
});

describe('the server: readiness follows the store', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s?.stop();
  });

  it('/readyz is 503 once the store cannot be read, while /healthz still answers', async () => {
    assert.equal((await s.call('GET', '/readyz')).status, 200);
    await s.opened.store.close();
    const ready = await s.call('GET', '/readyz');
    assert.equal(ready.status, 503, ready.text);
    assert.equal(ready.json.reason, 'store-unreachable');
    assert.equal((await s.call('GET', '/healthz')).status, 200);
  });
});
