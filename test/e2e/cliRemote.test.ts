import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI_BIN, cliHarness, requireBuiltCli, storeHead, tempDirs } from '../helpers/cliHarness.js';
import { type ServeProcess, startServeProcess, writeServeConfig } from '../helpers/serveProcess.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/testCertificates.js';
import { makeJwtIssuer } from '../helpers/testJwt.js';

/**
 * The built CLI against `keyledger serve` (another process of the built CLI): every command with
 * --server prints what the same command prints locally and exits the same way; 401/403 exit 2 with
 * the server's code; ciphertext made through the server decrypts locally and back.
 */
const { keyledger, ok, refused, env: ENV } = cliHarness();
const T1 = Buffer.from('tenant-1').toString('base64');

describe('keyledger --server (built CLI, keyledger serve in a child process)', () => {
  const dirs = tempDirs('kl-remote-');
  let serverDir: string;
  let clientDir: string;
  let certs: TestCertificates;
  let served: ServeProcess;
  let remote: (args: readonly string[], token?: string) => string[];

  before(async () => {
    requireBuiltCli();
    serverDir = dirs.make();
    clientDir = dirs.make();
    ok(serverDir, ['init']);
    certs = makeTestCertificates();
    const issuer = await makeJwtIssuer();
    writeServeConfig(serverDir, certs, issuer.jwks, {
      limits: { shutdownMs: 2000 },
    });
    served = await startServeProcess(serverDir, [], ENV);
    writeFileSync(join(clientDir, 'ops.token'), `${await issuer.sign('ops-team', ['admin:*'])}\n`, {
      mode: 0o600,
    });
    writeFileSync(join(clientDir, 'reader.token'), await issuer.sign('reader', [`read:${T1}`]), {
      mode: 0o600,
    });
    writeFileSync(join(clientDir, 'ca.pem'), certs.pem(certs.caCert));
    remote = (args, token = 'ops.token') => [
      ...args,
      '--server',
      served.url,
      '--token-file',
      token,
      '--ca-file',
      'ca.pem',
    ];
  });
  after(async () => {
    assert.equal(await served?.stop(), 0);
    certs?.remove();
    dirs.removeAll();
  });

  /** show-key-status shows each key's age, which moves between two calls: compared without it. */
  function withoutAges(out: string): string {
    if (out.trimStart().startsWith('[')) {
      return JSON.stringify(
        (JSON.parse(out) as Record<string, unknown>[]).map(({ ageMs: _age, ...rest }) => rest),
      );
    }
    return out
      .split('\n')
      .map((line) => {
        const cells = line.split(/ {2,}/);
        return cells.length === 6 && /^(AGE|-+|\d+[dhms]( \d+[dhms])?)$/.test(cells[4] ?? '')
          ? [...cells.slice(0, 4), ...cells.slice(5)].join('  ')
          : line;
      })
      .join('\n');
  }

  it('admin commands: the same output as local, the principal as actor', () => {
    const enabled = ok(
      clientDir,
      remote(['enable-key-management', 'name=tenant-1:orders', '--reason', 'onboarding']),
    );
    assert.match(enabled, /ACTIVE/);
    for (const args of [
      ['show-key-status', `${T1}:orders`],
      ['show-key-status', `${T1}:orders`, '--json'],
      ['list-scopes'],
      ['history', `${T1}:orders`, '--json'],
      ['resolve', T1, '--namespace', 'x', '--namespace', 'orders'],
    ]) {
      assert.equal(
        withoutAges(ok(clientDir, remote(args))),
        withoutAges(ok(serverDir, args)),
        args.join(' '),
      );
    }
    const [first] = JSON.parse(ok(clientDir, remote(['history', `${T1}:orders`, '--json']))) as {
      actor: string;
      reason: string;
    }[];
    assert.equal(first?.actor, 'ops-team');
    assert.equal(first?.reason, 'onboarding');
  });

  it('encrypts through the server, decrypts locally, and the other way round', () => {
    const plaintext = Buffer.from('invoice 2026-12 for tenant-1');
    const sealedRemotely = keyledger(clientDir, remote(['encrypt', T1, '--namespace', 'orders']), {
      input: plaintext,
    });
    assert.equal(sealedRemotely.code, 0, sealedRemotely.stderr);
    const openedLocally = keyledger(serverDir, ['decrypt', '--custodian', T1], {
      input: sealedRemotely.bytes,
    });
    assert.deepEqual(openedLocally.bytes, plaintext);
    const sealedLocally = keyledger(serverDir, ['encrypt', T1, '--namespace', 'orders'], {
      input: plaintext,
    });
    const openedRemotely = keyledger(clientDir, remote(['decrypt']), { input: sealedLocally.bytes });
    assert.equal(openedRemotely.code, 0, openedRemotely.stderr);
    assert.deepEqual(openedRemotely.bytes, plaintext);
  });

  it('401, 403 and bad input exit 2 with the code; nothing written', async () => {
    const head = await storeHead(serverDir);
    const check = (args: readonly string[], code: string) => {
      const run = keyledger(clientDir, args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, new RegExp(`^error ${code}:`), args.join(' '));
    };
    check(['list-scopes', '--server', served.url, '--ca-file', 'ca.pem'], 'ERR_UNAUTHENTICATED');
    check(remote(['rotate-managed-key', `${T1}:orders`], 'reader.token'), 'ERR_FORBIDDEN');
    check(remote(['rotate-managed-key', 'tenant-1:orders']), 'ERR_INVALID_CUSTODIAN');
    check(remote(['list-scopes', '--actor', 'someone']), 'ERR_INVALID_ARGUMENT');
    check(remote(['disable-managed-key', `${T1}:orders`, 'a'.repeat(32)]), 'ERR_KEY_NOT_FOUND');
    assert.equal(await storeHead(serverDir), head);
  });

  it('an API token made by the CLI authenticates --server until it is revoked over --server', () => {
    const made = ok(serverDir, [
      'token',
      'create',
      '--principal',
      'orders-service',
      '--grant',
      'read:name=tenant-1',
      '--json',
    ]);
    const { token, tokenId } = JSON.parse(made) as { token: string; tokenId: string };
    writeFileSync(join(clientDir, 'api.token'), `${token}\n`, { mode: 0o600 });
    assert.match(ok(clientDir, remote(['show-key-status', `${T1}:orders`], 'api.token')), /marker ACTIVE/);
    const denied = keyledger(clientDir, remote(['rotate-managed-key', `${T1}:orders`], 'api.token'));
    assert.equal(denied.code, 2);
    assert.match(denied.stderr, /^error ERR_FORBIDDEN:/);
    ok(clientDir, remote(['token', 'revoke', tokenId, '--reason', 'done']));
    const revoked = keyledger(clientDir, remote(['list-scopes'], 'api.token'));
    assert.equal(revoked.code, 2);
    assert.match(revoked.stderr, /^error ERR_UNAUTHENTICATED:/);
    assert.ok(!revoked.stderr.includes(token.slice(-20)), 'the token is never printed');
  });

  it('audit export streams from the server; verify --file checks that file locally, even with --server', () => {
    const exported = keyledger(clientDir, remote(['audit', 'export']));
    assert.equal(exported.code, 0, exported.stderr);
    writeFileSync(join(clientDir, 'export.jsonl'), exported.bytes);
    const report = JSON.parse(ok(clientDir, remote(['verify', '--file', 'export.jsonl', '--json'])));
    assert.equal(report.ok, true);
    assert.equal(report.macs, 'skipped', 'the client has no config: MACs are not checked');
  });

  it('watch --server prints the server’s events as JSON lines and stops on SIGINT with exit 0', async () => {
    const child = spawn(
      process.execPath,
      [CLI_BIN, ...remote(['watch', '--from', 'start', '--types', 'KeyManagementEnabled'])],
      {
        cwd: clientDir,
        env: ENV,
      },
    );
    let stdout = '';
    const exited = once(child, 'exit');
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no event printed')), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        if (stdout.includes('\n')) {
          clearTimeout(timer);
          resolve(stdout.split('\n')[0] ?? '');
        }
      });
    });
    const event = JSON.parse(line) as { type: string; meta: { actor: string } };
    assert.equal(event.type, 'KeyManagementEnabled');
    assert.equal(event.meta.actor, 'ops-team');
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 0);
  });

  it('an untrusted server certificate exits 1 with ERR_SERVER_UNAVAILABLE', async () => {
    await refused(
      clientDir,
      ['list-scopes', '--server', served.url, '--token-file', 'ops.token'],
      'ERR_SERVER_UNAVAILABLE',
      1,
    );
  });
});
