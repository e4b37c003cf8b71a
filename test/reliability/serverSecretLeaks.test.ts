import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { runCli } from '../../src/cli/runCli.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { cliEnv, requireBuiltCli } from '../helpers/cliHarness.js';
import { type Answer, httpsCall } from '../helpers/httpsCall.js';
import { type Haystack, keyNeedles, plantKnownKeys, scanForLeaks } from '../helpers/secretScan.js';
import { startServeProcess } from '../helpers/serveProcess.js';
import { makeTestCertificates } from '../helpers/testCertificates.js';
import { AUDIENCE, ISSUER, makeJwtIssuer } from '../helpers/testJwt.js';

/**
 * Secrets never leak (issue 15, part 5), the server scenario: `keyledger serve` (the built CLI, in a
 * child, its access log on stderr) over a ledger whose keys are known (a keystore written here),
 * driven over HTTPS with a JWT and an API token: encrypt and decrypt (JSON and streamed), rotate,
 * set key, rotate the STK, checkpoint, verify, refusals, the SSE event stream, the audit export and
 * the metrics. Every response body and header, the child's stdout and stderr, the stored events, the
 * sqlite file and the export are searched for each key in raw, hex, base64 and base64url form, and
 * the API token's secret for its text: there must be no hit.
 */
const TENANT = Buffer.from('tenant-1').toString('base64');

async function cli(
  dir: string,
  args: readonly string[],
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    cwd: dir,
    env: { KEYLEDGER_ACTOR: 'leak-scan' },
    isTty: false,
    stdin: Readable.from([]),
    stdoutStream: new Writable({ write: (_c, _e, done) => done() }),
  });
  return { code, out, err };
}

/** A streamed (octet-stream) call: the body out, the raw answer and its trailers back. */
function streamed(url: string, path: string, ca: Buffer, token: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, url),
      {
        method: 'POST',
        ca,
        agent: false,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            trailers: res.trailers,
            bytes,
            text: bytes.toString('utf8'),
            json: undefined,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The first `ms` of the SSE event stream from the start, as bytes. */
function sse(url: string, ca: Buffer, token: string, ms: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const req = httpsRequest(
      new URL('/v1/events?from=start', url),
      { ca, agent: false, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } },
      (res) => {
        res.on('data', (c: Buffer) => chunks.push(c));
        setTimeout(() => {
          req.destroy();
          resolve(Buffer.concat([Buffer.from(JSON.stringify(res.headers)), ...chunks]));
        }, ms);
      },
    );
    req.on('error', (error) => (chunks.length > 0 ? undefined : reject(error)));
    req.end();
  });
}

describe('reliability: secrets never leak (server scenario)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-server-leaks-'));
  const certs = makeTestCertificates();
  after(() => {
    certs.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no key or token secret in any response, header, log line, event, snapshot or export', {
    timeout: 110_000,
  }, async () => {
    requireBuiltCli();
    assert.equal((await cli(dir, ['init'])).code, 0);
    const configFile = join(dir, 'keyledger.config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    const secrets = plantKnownKeys(dir, config.keystore.path);
    const issuer = await makeJwtIssuer();
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(issuer.jwks));
    config.provider = 'keystore';
    config.keystore.scopes = {
      [`${TENANT}:orders`]: { alias: 'orders-v1' },
      [`${TENANT}:billing`]: { alias: 'billing-v1' },
    };
    config.server = {
      listen: '127.0.0.1:0',
      tls: { cert: certs.serverCert, key: certs.serverKey },
      auth: { jwt: { jwks: 'jwks.json', issuer: ISSUER, audience: AUDIENCE } },
      limits: { shutdownMs: 2000 },
    };
    writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
    const created = await cli(dir, ['token', 'create', '--principal', 'svc', '--grant', 'admin:*', '--json']);
    assert.equal(created.code, 0, created.err);
    const apiToken: string = JSON.parse(created.out).token;
    const tokenSecret = apiToken.split('_').slice(2).join('_');
    assert.ok(tokenSecret.length >= 40, 'the token has its secret part');

    const served = await startServeProcess(dir, [], cliEnv('leak-scan'));
    let serverStdout = '';
    served.child.stdout.on('data', (c: Buffer) => {
      serverStdout += c.toString('utf8');
    });
    const ca = certs.pem(certs.caCert);
    const jwt = await issuer.sign('ops', ['admin:*']);
    const answers: { where: string; answer: Answer }[] = [];
    const call = async (path: string, json: unknown, token = jwt): Promise<Answer> => {
      const answer = await httpsCall(served.url, 'POST', path, { ca, token, json });
      answers.push({ where: `POST ${path}`, answer });
      return answer;
    };
    let exported: Answer | null = null;
    let events: Buffer = Buffer.alloc(0);
    try {
      const ok = async (path: string, json: unknown, token = jwt) => {
        const answer = await call(path, json, token);
        assert.equal(answer.status, 200, `${path}: ${answer.text}`);
        return answer;
      };
      await ok('/v1/enable-key-management', { scope: `${TENANT}:orders` });
      await ok('/v1/enable-key-management', { scope: `${TENANT}:billing` }, apiToken);
      // The provider's metadata of the ACTIVE key, with the other alias: set-managed-key's input.
      const status = await ok('/v1/show-key-status', { scope: `${TENANT}:orders` });
      const metadataText = /"metadata":("(?:[^"\\]|\\.)*")/.exec(status.text)?.[1];
      if (metadataText === undefined) assert.fail(`no metadata in ${status.text}`);
      const metadata = { ...JSON.parse(JSON.parse(metadataText)), KeyAlias: 'orders-v2' };
      await ok('/v1/set-managed-key', { scope: `${TENANT}:orders`, metadata: JSON.stringify(metadata) });
      await ok('/v1/rotate-managed-key', { scope: `${TENANT}:billing` });
      await ok('/v1/show-key-status', { scope: `${TENANT}:orders` });
      await ok('/v1/list-scopes', {}, apiToken);
      await ok('/v1/resolve', { custodian: TENANT, namespace: ['orders'] });
      await ok('/v1/history', { scope: `${TENANT}:orders` });
      const plaintext = Buffer.from('server leak-scan plaintext '.repeat(50));
      const sealed = await ok('/v1/encrypt', {
        custodian: TENANT,
        namespace: ['orders'],
        data: plaintext.toString('base64'),
      });
      const opened = await ok('/v1/decrypt', { data: sealed.json.data });
      assert.deepEqual(Buffer.from(opened.json.data, 'base64'), plaintext);
      const stream = await streamed(
        served.url,
        `/v1/encrypt?custodian=${TENANT}&namespace=billing`,
        ca,
        jwt,
        plaintext,
      );
      answers.push({ where: 'streamed encrypt', answer: stream });
      assert.equal(stream.status, 200, stream.text);
      const unstream = await streamed(served.url, '/v1/decrypt', ca, apiToken, stream.bytes);
      answers.push({ where: 'streamed decrypt', answer: unstream });
      assert.deepEqual(unstream.bytes, plaintext);
      // Refusals: garbage to decrypt, an unknown key, a bad token, a body that is not JSON.
      assert.notEqual((await call('/v1/decrypt', { data: randomBytes(300).toString('base64') })).status, 200);
      assert.notEqual(
        (await call('/v1/disable-managed-key', { scope: `${TENANT}:orders`, key: 'A'.repeat(43) })).status,
        200,
      );
      assert.equal((await call('/v1/list-scopes', {}, `${apiToken.slice(0, -2)}xx`)).status, 401);
      const notJson = await httpsCall(served.url, 'POST', '/v1/list-scopes', {
        ca,
        token: jwt,
        body: Buffer.from('{"x":'),
        contentType: 'application/json',
      });
      answers.push({ where: 'a body that is not JSON', answer: notJson });
      assert.equal(notJson.status, 400);
      await ok('/v1/rotate-stk', {});
      await ok('/v1/checkpoint', {});
      await ok('/v1/verify', {});
      await ok('/v1/metrics', {});
      exported = await ok('/v1/audit-export', {});
      const metrics = await httpsCall(served.url, 'GET', '/metrics', { ca, token: jwt });
      answers.push({ where: 'GET /metrics', answer: metrics });
      events = await sse(served.url, ca, jwt, 1000);
    } finally {
      assert.equal(await served.stop(), 0, served.stderr());
    }

    const haystacks: Haystack[] = answers.flatMap(({ where, answer }) => [
      { where: `${where} body`, bytes: answer.bytes },
      { where: `${where} headers`, bytes: Buffer.from(JSON.stringify([answer.headers, answer.trailers])) },
    ]);
    haystacks.push({ where: 'the event stream', bytes: events });
    haystacks.push({ where: 'serve stderr (access log)', bytes: Buffer.from(served.stderr()) });
    haystacks.push({ where: 'serve stdout', bytes: Buffer.from(serverStdout) });
    haystacks.push({ where: 'the ledger file', bytes: readFileSync(join(dir, '.keyledger', 'ledger.db')) });
    assert.ok(
      served
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{')).length >= 20,
      'an access log',
    );
    assert.ok(exported !== null && exported.bytes.length > 100, 'an export');
    const store = SqliteEventStore.open(join(dir, '.keyledger', 'ledger.db'));
    try {
      const stored: unknown[] = [];
      for await (const event of store.readAll()) stored.push(event);
      const snapshot = await store.loadSnapshot('keymeta').catch(() => null);
      const text = JSON.stringify([stored, snapshot], (_k, v) => (typeof v === 'bigint' ? String(v) : v));
      haystacks.push({ where: 'the events and snapshot', bytes: Buffer.from(text) });
      assert.ok(stored.length > 5, `only ${stored.length} events`);
    } finally {
      await store.close();
    }

    const { scanned, hits } = scanForLeaks(
      [
        ...keyNeedles(secrets),
        { name: 'the API token secret', needle: Buffer.from(tokenSecret) },
        { name: 'the JWT', needle: Buffer.from(jwt) },
      ],
      haystacks,
    );
    assert.deepEqual(hits, []);
    console.log(
      `leak scan (server): ${answers.length} HTTP answers + the event stream, ${haystacks.length} outputs/files, ${secrets.size} keys × 5 forms + token secret + JWT, ${scanned} searches, 0 hits`,
    );
  });
});
