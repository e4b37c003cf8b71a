import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { firstValueFrom, take, toArray } from 'rxjs';
import { KeyledgerClient } from '../../src/client/keyledgerClient.js';
import { closedPort } from '../helpers/closedPort.js';

/**
 * The client's own edges, against a scripted HTTP peer on loopback: answers a real server gives
 * only when something breaks (a cut stream, no trailer, a proxy's 502, silence) and the SSE
 * resume. The behaviours a server does give are in the contract suite (keyledgerApi.remote.test.ts).
 */
const TOKEN = 'klt_secret-token-never-shown';
const servers: Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function peer(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handle);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function failure(
  call: () => Promise<unknown>,
): Promise<{ code?: string; details?: unknown; message: string }> {
  try {
    await call();
  } catch (error) {
    return error as { code?: string; details?: unknown; message: string };
  }
  assert.fail('expected a failure');
}

function noToken(error: unknown) {
  assert.ok(!JSON.stringify(error).includes(TOKEN), 'the token is not in the error');
  assert.ok(!String((error as Error).message).includes(TOKEN));
}

describe('KeyledgerClient options', () => {
  it('refuses a bad URL, plain http off loopback, a token that cannot be a header, a cert without key', () => {
    for (const options of [
      { url: 'not a url' },
      { url: 'http://keyledger.example:8443' },
      { url: 'https://user:pw@keyledger.example' },
      { url: 'https://keyledger.example/v1' },
      { url: 'https://keyledger.example', token: 'a\nb' },
      { url: 'https://keyledger.example', cert: 'PEM' },
      { url: 'https://keyledger.example', timeoutMs: -1 },
    ]) {
      assert.throws(
        () => new KeyledgerClient(options),
        { code: 'ERR_INVALID_ARGUMENT' },
        JSON.stringify(options),
      );
    }
  });
});

describe('KeyledgerClient against a scripted peer', () => {
  it('an unreachable server is ERR_SERVER_UNAVAILABLE naming the URL, never the token', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const client = new KeyledgerClient({ url, token: TOKEN });
    const error = await failure(() => client.call('list-scopes', {}));
    assert.equal(error.code, 'ERR_SERVER_UNAVAILABLE');
    assert.deepEqual(error.details, { url, reason: 'ECONNREFUSED' });
    noToken(error);
    const watched = await failure(() => firstValueFrom(client.events$({ from: 'start' })));
    assert.equal(watched.code, 'ERR_SERVER_UNAVAILABLE');
    await client.close();
  });

  it('a server that does not answer in timeoutMs is ERR_SERVER_UNAVAILABLE (timeout)', async () => {
    const url = await peer(() => {});
    const client = new KeyledgerClient({ url, token: TOKEN, timeoutMs: 200 });
    const error = await failure(() => client.call('list-scopes', {}));
    assert.equal(error.code, 'ERR_SERVER_UNAVAILABLE');
    assert.deepEqual(error.details, { url, reason: 'timeout' });
    await client.close();
  });

  it('maps problems back to their code and details; an unknown code is ERR_INTERNAL; a 502 page unavailable', async () => {
    const seen: IncomingMessage[] = [];
    const url = await peer((req, res) => {
      seen.push(req);
      const problem = (status: number, body: object) => {
        res.writeHead(status, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/v1/show-key-status') {
        problem(409, {
          type: 'https://keyledger.dev/errors/ERR_KEY_MANAGEMENT_NOT_ENABLED',
          title: 'not enabled',
          status: 409,
          code: 'ERR_KEY_MANAGEMENT_NOT_ENABLED',
          details: { scope: 'Kg==:x', marker: null },
          requestId: 'r1',
        });
      } else if (req.url === '/v1/list-scopes') {
        problem(500, { title: 'from the future', status: 500, code: 'ERR_FROM_A_NEWER_SERVER', details: {} });
      } else {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<h1>Bad gateway</h1>');
      }
    });
    const client = new KeyledgerClient({ url, token: TOKEN });
    const known = await failure(() =>
      client.call('show-key-status', { scope: 'Kg==:x' }, { reason: 'look' }),
    );
    assert.equal(known.code, 'ERR_KEY_MANAGEMENT_NOT_ENABLED');
    assert.deepEqual(known.details, { scope: 'Kg==:x', marker: null });
    assert.equal(seen[0]?.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(seen[0]?.headers['keyledger-reason'], 'look');
    assert.equal((await failure(() => client.call('list-scopes', {}))).code, 'ERR_INTERNAL');
    const proxy = await failure(() => client.call('metrics', {}));
    assert.equal(proxy.code, 'ERR_SERVER_UNAVAILABLE');
    assert.equal((proxy.details as { reason?: string }).reason, 'http-502');
    // A header holds printable ASCII: anything else in a reason is sent percent-encoded.
    await failure(() => client.call('clear-cache', {}, { reason: 'line\nbreak 100%' }));
    assert.equal(seen.at(-1)?.headers['keyledger-reason'], 'line%0Abreak 100%25');
    const sent = seen.length;
    assert.equal(
      (await failure(() => client.call('clear-cache', {}, { reason: 'x'.repeat(1025) }))).code,
      'ERR_INVALID_ARGUMENT',
    );
    assert.equal(seen.length, sent, 'a reason too long for an event is not sent');
    assert.equal(
      (await failure(() => client.call('init' as 'clear-cache', {}))).code,
      'ERR_INVALID_ARGUMENT',
      'a local-only operation is not sent',
    );
    await client.close();
  });

  it('a streamed answer without its Keyledger-Result trailer fails: decrypt as ERR_DECRYPTION_FAILED', async () => {
    const url = await peer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', trailer: 'Keyledger-Result' });
        res.write(Buffer.alloc(1000, 7));
        if (req.url?.includes('custodian=good')) {
          res.addTrailers({ 'Keyledger-Result': JSON.stringify({ keyId: 'k' }) });
          res.end();
        } else if (req.url?.includes('custodian=cut')) {
          setTimeout(() => res.destroy(), 50); // after the first byte: no terminating chunk, no trailer
        } else {
          res.end(); // a clean end, but no result
        }
      });
    });
    const client = new KeyledgerClient({ url, token: TOKEN });
    const run = async (name: 'encrypt' | 'decrypt', custodian: string) => {
      const transfer = client.stream(name, { custodian, namespace: ['a', 'b'] } as never);
      let received = 0;
      const piped = pipeline(
        Readable.from([Buffer.from('input')]),
        transfer.stream,
        new Writable({
          write(chunk: Buffer, _e, cb) {
            received += chunk.length;
            cb();
          },
        }),
      ).then(
        () => 'ok',
        () => 'failed',
      );
      const result = await transfer.result.then(
        (r) => r,
        (e: { code?: string }) => e.code,
      );
      return { result, piped: await piped, received };
    };
    assert.deepEqual(await run('decrypt', 'good'), { result: { keyId: 'k' }, piped: 'ok', received: 1000 });
    assert.deepEqual((await run('decrypt', 'cut')).result, 'ERR_DECRYPTION_FAILED');
    assert.deepEqual((await run('decrypt', 'none')).piped, 'failed');
    assert.deepEqual((await run('decrypt', 'none')).result, 'ERR_DECRYPTION_FAILED');
    assert.deepEqual((await run('encrypt', 'cut')).result, 'ERR_SERVER_UNAVAILABLE');
    await client.close();
  });

  it('events$ resumes after a dropped connection with Last-Event-ID: no gap, no duplicate', async () => {
    const asked: (string | undefined)[] = [];
    const url = await peer((req, res) => {
      const last = req.headers['last-event-id'] as string | undefined;
      asked.push(last ?? req.url);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const from = last === undefined ? 0 : Number(last);
      const send = (n: number) => res.write(`id: ${n}\nevent: E\ndata: {"position":"${n}"}\n\n`);
      res.write(': heartbeat\n\n');
      send(from + 1);
      send(from + 2);
      if (from < 4) setTimeout(() => res.socket?.destroy(), 20); // drop the connection
    });
    const client = new KeyledgerClient({ url, token: TOKEN });
    const events = await firstValueFrom(
      client.events$({ from: 'start', types: 'A,B', scope: ['Kg==:x', 'Kg==:y'] }).pipe(take(6), toArray()),
    );
    assert.deepEqual(
      events.map((e) => e.position),
      ['1', '2', '3', '4', '5', '6'],
    );
    assert.equal(asked[0], '/v1/events?from=start&types=A%2CB&scope=Kg%3D%3D%3Ax%2CKg%3D%3D%3Ay');
    assert.deepEqual(asked.slice(1), ['2', '4']);
    await client.close();
  });
});
