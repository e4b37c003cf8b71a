import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type EventStreamClient, openEventStream } from '../helpers/eventStream.js';
import { startTestServer, type TestServer } from '../helpers/testServer.js';

const T1 = Buffer.from('tenant-1').toString('base64');
const T2 = Buffer.from('tenant-2').toString('base64');

describe('the server: GET /v1/events (server-sent events)', () => {
  let s: TestServer;
  let admin: string;
  let auditor: string;
  const open: EventStreamClient[] = [];
  const stream = async (path: string, token: string, lastEventId?: string) => {
    const client = await openEventStream(new URL(path, s.url).toString(), {
      ca: s.certs.pem(s.certs.caCert),
      token,
      ...(lastEventId === undefined ? {} : { lastEventId }),
    });
    open.push(client);
    return client;
  };
  const enable = async (scope: string) => {
    const answer = await s.call('POST', '/v1/enable-key-management', { token: admin, json: { scope } });
    assert.equal(answer.status, 200, answer.text);
  };

  before(async () => {
    s = await startTestServer({ heartbeatMs: 100, limits: { maxSseConnections: 3 } });
    admin = await s.jwt('admin', ['admin:*']);
    auditor = await s.jwt('auditor', ['audit:*']);
    await enable(`${T1}:orders`);
    await enable(`${T2}:orders`);
  });
  after(async () => {
    for (const client of open) client.close();
    await s?.stop();
  });

  it('sends every event from the start, then new ones as they happen, with heartbeats', async () => {
    const client = await stream('/v1/events?from=start', auditor);
    assert.equal(client.status, 200);
    assert.match(String(client.response.headers['content-type']), /^text\/event-stream/);
    const head = await s.head();
    await client.until(() => client.events.some((e) => BigInt(e.id) === head));
    for (const e of client.events) {
      assert.equal(e.data.position, e.id);
      assert.equal(e.data.type, e.event);
    }
    await enable(`${T1}:live`);
    await client.until(() => client.events.some((e) => e.data.data?.namespace === 'live'));
    await client.until(() => client.comments.includes('heartbeat'));
    client.close();
  });

  it('resumes strictly after Last-Event-ID (it takes precedence over from): no gap, no duplicate', async () => {
    const first = await stream('/v1/events?from=start', auditor);
    const head = await s.head();
    await first.until(() => first.events.some((e) => BigInt(e.id) === head));
    first.close();
    const all = first.events.map((e) => e.id);
    const cut = all[2] ?? '';
    const resumed = await stream('/v1/events?from=now', auditor, cut);
    await resumed.until(() => resumed.events.some((e) => BigInt(e.id) === head));
    assert.deepEqual(
      resumed.events.map((e) => e.id),
      all.slice(3),
    );
    resumed.close();
  });

  it('sends only the events of custodians the principal may audit', async () => {
    const narrow = await s.jwt('auditor-1', [`audit:${T1}`]);
    const client = await stream('/v1/events?from=start', narrow);
    await enable(`${T1}:marker`);
    await client.until(() => client.events.some((e) => e.data.data?.namespace === 'marker'));
    assert.ok(client.events.length > 0);
    for (const e of client.events) assert.equal(e.data.data.custodian, T1, JSON.stringify(e));
    client.close();
  });

  it('refuses a principal who may audit nothing (403) and bad input (400)', async () => {
    const encryptor = await s.jwt('app', [`encrypt:${T1}`]);
    const refused = await stream('/v1/events', encryptor);
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(await refused.body).code, 'ERR_FORBIDDEN');
    const bad = await stream('/v1/events?types=NoSuchEvent', auditor);
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(await bad.body).code, 'ERR_INVALID_ARGUMENT');
  });

  it('caps concurrent streams: one over the limit is 503 ERR_SERVER_BUSY', async () => {
    // The streams of the tests before are closed: wait until the server has seen them go.
    const scraper = await s.jwt('scraper', ['audit:*']);
    for (let i = 0; i < 100; i++) {
      const metrics = await s.call('GET', '/metrics', { token: scraper });
      if (/^keyledger_sse_connections 0$/m.test(metrics.text)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const held = [
      await stream('/v1/events', auditor),
      await stream('/v1/events', auditor),
      await stream('/v1/events', auditor),
    ];
    for (const c of held) assert.equal(c.status, 200);
    const over = await stream('/v1/events', auditor);
    assert.equal(over.status, 503);
    const body = JSON.parse(await over.body);
    assert.equal(body.code, 'ERR_SERVER_BUSY');
    assert.deepEqual(body.details, { limit: 3, resource: 'event streams' });
    for (const c of held) c.close();
  });
});
