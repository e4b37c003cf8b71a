import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliHarness, requireBuiltCli, storeHead, tempDirs } from '../helpers/cliHarness.js';
import { httpsCall } from '../helpers/httpsCall.js';
import { type ServeProcess, startServeProcess } from '../helpers/serveProcess.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/testCertificates.js';
import { AUDIENCE, ISSUER, type JwtIssuer, makeJwtIssuer } from '../helpers/testJwt.js';

/** `keyledger serve` as an operator runs it: the built CLI in a child process, stopped by SIGTERM. */
const { ok, refused, env: ENV } = cliHarness();
const T1 = Buffer.from('tenant-1').toString('base64');

/** The built CLI's `keyledger serve` with the harness's environment. */
const serve = (cwd: string, args: readonly string[]) => startServeProcess(cwd, args, ENV);

describe('keyledger serve (the built CLI)', () => {
  const dirs = tempDirs('kl-serve-');
  let dir: string;
  let certs: TestCertificates;
  let issuer: JwtIssuer;
  const running: ServeProcess[] = [];

  before(async () => {
    requireBuiltCli();
    dir = dirs.make();
    ok(dir, ['init']);
    certs = makeTestCertificates();
    issuer = await makeJwtIssuer();
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(issuer.jwks));
    const configFile = join(dir, 'keyledger.config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    config.server = {
      listen: '127.0.0.1:0',
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.caCert },
      auth: {
        jwt: { jwks: 'jwks.json', issuer: ISSUER, audience: AUDIENCE },
        mtls: { principalFrom: 'subject', grants: { 'app-1': ['read:*'] } },
      },
      limits: { shutdownMs: 2000 },
    };
    writeFileSync(configFile, JSON.stringify(config, null, 2));
  });
  after(async () => {
    for (const s of running) await s.stop();
    certs?.remove();
    dirs.removeAll();
  });

  it('prints listening <url> first, serves with the principal as actor, stops on SIGTERM with exit 0', async () => {
    const apiToken: string = JSON.parse(
      ok(dir, ['token', 'create', '--principal', 'svc-cli', '--grant', 'read:*', '--json']),
    ).token;
    const served = await serve(dir, []);
    running.push(served);
    assert.match(served.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = certs.pem(certs.caCert);
    const byToken = await httpsCall(served.url, 'POST', '/v1/list-scopes', { ca, token: apiToken, json: {} });
    assert.equal(byToken.status, 200, byToken.text);
    const badToken = await httpsCall(served.url, 'POST', '/v1/list-scopes', {
      ca,
      token: `${apiToken.slice(0, -1)}${apiToken.endsWith('A') ? 'B' : 'A'}`,
      json: {},
    });
    assert.equal(badToken.status, 401, badToken.text);
    const token = await issuer.sign('ops-1', [`operate:${T1}`, `audit:${T1}`]);
    const enabled = await httpsCall(served.url, 'POST', '/v1/enable-key-management', {
      ca,
      token,
      json: { scope: `${T1}:orders` },
      headers: { 'x-request-id': 'e2e-1' },
    });
    assert.equal(enabled.status, 200, enabled.text);
    const ready = await httpsCall(served.url, 'GET', '/readyz', { ca });
    assert.equal(ready.status, 200, ready.text);
    const listed = await httpsCall(served.url, 'POST', '/v1/list-scopes', {
      ca,
      json: {},
      clientCert: { cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) },
    });
    assert.equal(listed.status, 200, listed.text);
    assert.equal(await served.stop(), 0, served.stderr());
    // The access log: one JSON line per request, the principal named, no token.
    const lines = served
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.requestId === 'e2e-1' && l.principal === 'ops-1' && l.status === 200));
    assert.ok(!served.stderr().includes(token));
    assert.ok(!served.stderr().includes(apiToken));
    // The CLI sees what the server wrote, under the principal's name.
    const history = JSON.parse(ok(dir, ['history', `${T1}:orders`, '--json']));
    assert.ok(
      history.some(
        (e: { actor: string; correlationId: string }) => e.actor === 'ops-1' && e.correlationId === 'e2e-1',
      ),
    );
  });

  it('the flags override the config (plain HTTP on loopback)', async () => {
    const plainDir = dirs.make();
    ok(plainDir, ['init']);
    const served = await serve(plainDir, ['--listen', '127.0.0.1:0']);
    running.push(served);
    assert.match(served.url, /^http:\/\//);
    assert.equal(await served.stop(), 0);
  });

  it('refuses a non-loopback address without TLS: exit 2, nothing written', async () => {
    const plainDir = dirs.make();
    ok(plainDir, ['init']);
    const before = await storeHead(plainDir);
    await refused(plainDir, ['serve', '--listen', '0.0.0.0:0'], 'ERR_INVALID_CONFIG', 2);
    assert.equal(await storeHead(plainDir), before);
  });

  it('refuses a certificate without its key, and options of other commands', async () => {
    await refused(
      dir,
      ['serve', '--tls-cert', certs.serverCert, '--tls-key', join(dir, 'missing.key')],
      'ERR_INVALID_CONFIG',
      2,
    );
    await refused(dir, ['serve', '--actor', 'someone'], 'ERR_INVALID_ARGUMENT', 2);
    await refused(dir, ['serve', '--scope', 'x'], 'ERR_INVALID_ARGUMENT', 2);
  });

  it('ends open event streams on SIGTERM and exits 0', async () => {
    const served = await serve(dir, []);
    running.push(served);
    const token = await issuer.sign('auditor', ['audit:*']);
    const { request } = await import('node:https');
    let signalled = false;
    const streamed = new Promise<string>((resolve, reject) => {
      const req = request(
        new URL('/v1/events?from=start', served.url),
        {
          ca: certs.pem(certs.caCert),
          headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => {
            text += chunk.toString('utf8');
            // Once: a second SIGTERM during the shutdown ends the process at once, by design.
            if (!signalled && text.includes('event: ')) {
              signalled = true;
              served.child.kill('SIGTERM');
            }
          });
          res.on('end', () => resolve(text));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
    const text = await streamed;
    assert.match(text, /^id: \d+$/m);
    assert.equal(await served.stop(), 0, served.stderr());
  });
});
