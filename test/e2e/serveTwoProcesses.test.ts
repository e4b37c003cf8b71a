import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cliHarness, requireBuiltCli, storeHead, tempDirs } from '../helpers/cliHarness.js';
import { type EventStreamClient, openEventStream } from '../helpers/eventStream.js';
import { type Answer, httpsCall } from '../helpers/httpsCall.js';
import { type ServeProcess, startServeProcess, writeServeConfig } from '../helpers/serveProcess.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/testCertificates.js';
import { type JwtIssuer, makeJwtIssuer } from '../helpers/testJwt.js';

/**
 * Issue 12: `keyledger serve` processes sharing one sqlite store (one config dir, two ports), and an
 * event stream resumed with Last-Event-ID across a restart of the server, with events written by the
 * local CLI while no server ran.
 */
const { ok, env: ENV } = cliHarness();
const T1 = Buffer.from('tenant-1').toString('base64');
const ORDERS = `${T1}:orders`;

describe('keyledger serve: two processes on one store; SSE resume across a restart', () => {
  const dirs = tempDirs('kl-serve2-');
  const running: ServeProcess[] = [];
  const streams: EventStreamClient[] = [];
  let dir: string;
  let certs: TestCertificates;
  let issuer: JwtIssuer;
  let admin: string;
  let ca: Buffer;

  const serve = async () => {
    const served = await startServeProcess(dir, [], ENV);
    running.push(served);
    return served;
  };
  const call = (served: ServeProcess, path: string, json: unknown): Promise<Answer> =>
    httpsCall(served.url, 'POST', path, { ca, token: admin, json });
  const stream = async (served: ServeProcess, path: string, lastEventId?: string) => {
    const client = await openEventStream(new URL(path, served.url).toString(), {
      ca,
      token: admin,
      ...(lastEventId === undefined ? {} : { lastEventId }),
    });
    streams.push(client);
    assert.equal(client.status, 200);
    return client;
  };
  /** Polls /readyz until the process's view has applied everything up to `head`. */
  const caughtUp = async (served: ServeProcess, head: bigint) => {
    for (let i = 0; i < 200; i++) {
      const ready = await httpsCall(served.url, 'GET', '/readyz', { ca });
      if (ready.status === 200 && BigInt(ready.json.position) >= head) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail(`${served.url} did not catch up to ${head}`);
  };
  const encrypt = async (served: ServeProcess) => {
    const answer = await call(served, '/v1/encrypt', {
      custodian: T1,
      namespace: ['orders'],
      data: Buffer.from('row').toString('base64'),
    });
    assert.equal(answer.status, 200, answer.text);
    return answer.json as { keyId: string; metadataHash: string };
  };

  before(async () => {
    requireBuiltCli();
    dir = dirs.make();
    ok(dir, ['init']);
    certs = makeTestCertificates();
    ca = certs.pem(certs.caCert);
    issuer = await makeJwtIssuer();
    admin = await issuer.sign('ops', ['admin:*']);
    writeServeConfig(dir, certs, issuer.jwks, {
      heartbeatMs: 200,
      limits: { shutdownMs: 2000 },
    });
  });
  after(async () => {
    for (const client of streams) client.close();
    for (const served of running) await served.stop();
    certs?.remove();
    dirs.removeAll();
  });

  it('a rotation through A: B catches up, encrypts with the new key, and B’s event stream carries it', async () => {
    const a = await serve();
    const b = await serve();
    assert.notEqual(a.url, b.url);
    const enabled = await call(a, '/v1/enable-key-management', { scope: ORDERS });
    assert.equal(enabled.status, 200, enabled.text);
    await caughtUp(b, await storeHead(dir));
    // B uses (and caches) the first key before the rotation.
    const before = await encrypt(b);
    const watched = await stream(b, '/v1/events?from=now');
    const rotated = await call(a, '/v1/rotate-managed-key', { scope: ORDERS });
    assert.equal(rotated.status, 200, rotated.text);
    const head = await storeHead(dir);
    await caughtUp(b, head);
    const afterA = await encrypt(a);
    const afterB = await encrypt(b);
    assert.notEqual(afterA.keyId, before.keyId, 'A encrypts with the rotated key');
    assert.equal(afterB.keyId, afterA.keyId, 'B encrypts with the key rotated through A');
    assert.equal(afterB.metadataHash, afterA.metadataHash);
    await watched.until(() => watched.events.some((e) => e.event === 'ManagedKeyRotated'));
    const event = watched.events.find((e) => e.event === 'ManagedKeyRotated');
    assert.equal(event?.id, String(head));
    assert.equal(event?.data.meta.actor, 'ops');
    assert.equal(await a.stop(), 0, a.stderr());
    assert.equal(await b.stop(), 0, b.stderr());
  });

  it('Last-Event-ID after a restart: every event written while the server was down, once, in order', async () => {
    const first = await serve();
    const all = await stream(first, '/v1/events?from=start');
    const head = await storeHead(dir);
    await all.until(() => all.events.some((e) => BigInt(e.id) === head));
    const seen = all.events.map((e) => e.id);
    // The client stops at an event before the end, as if it had read only that far.
    const cut = seen[Math.max(0, seen.length - 3)] ?? '';
    all.close();
    assert.equal(await first.stop(), 0, first.stderr());
    // Written while no server runs, by the local CLI on the same store.
    ok(dir, ['enable-key-management', `${T1}:down-1`]);
    ok(dir, ['rotate-managed-key', ORDERS]);
    ok(dir, ['enable-key-management', `${T1}:down-2`]);
    const newHead = await storeHead(dir);
    assert.ok(newHead > head);
    const second = await serve();
    const resumed = await stream(second, '/v1/events?from=now', cut);
    await resumed.until(() => resumed.events.some((e) => BigInt(e.id) === newHead));
    // What the store holds after the cut, from a full read of the new process.
    const full = await stream(second, '/v1/events?from=start');
    await full.until(() => full.events.some((e) => BigInt(e.id) === newHead));
    const expected = full.events.map((e) => e.id).filter((id) => BigInt(id) > BigInt(cut));
    const got = resumed.events.map((e) => e.id);
    assert.deepEqual(got, expected, 'no gap, no duplicate');
    assert.equal(new Set(got).size, got.length);
    assert.ok(got.includes(seen[seen.length - 1] ?? ''), 'the events after the cut seen before come again');
    assert.ok(
      resumed.events.some((e) => e.event === 'ManagedKeyRotated' && e.data.meta.actor === 'e2e'),
      'the rotation written by the CLI while the server was down',
    );
    for (const e of resumed.events) assert.equal(e.data.position, e.id);
    resumed.close();
    full.close();
    assert.equal(await second.stop(), 0, second.stderr());
  });
});
