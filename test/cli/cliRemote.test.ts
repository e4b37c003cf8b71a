import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/runCli.js';
import { keyScope } from '../../src/domain/identities.js';
import { closedPort } from '../helpers/closedPort.js';
import { type ContractServer, startContractServer } from '../helpers/contractServer.js';

/**
 * The CLI with --server (runCli in process, the real client, a real server on 127.0.0.1:0): the same
 * views and exit codes as local; 401/403 exit 2 with the server's code; --actor refused.
 */
const T1 = Buffer.from('tenant-1').toString('base64');
const T2 = Buffer.from('tenant-2').toString('base64');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly bytes: Buffer;
}

describe('keyledger --server', () => {
  let s: ContractServer;
  let dir: string;
  let env: Record<string, string>;

  async function cli(
    args: readonly string[],
    options: { input?: Buffer; env?: Record<string, string> } = {},
  ) {
    let stdout = '';
    let stderr = '';
    const parts: Buffer[] = [];
    const code = await runCli(args, {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      cwd: dir,
      env: { ...env, ...options.env },
      isTty: false,
      stdin: Readable.from(options.input === undefined ? [] : [options.input]),
      stdoutStream: new Writable({
        write(chunk: Buffer, _e, callback) {
          parts.push(chunk);
          callback();
        },
      }),
    });
    return { code, stdout, stderr, bytes: Buffer.concat(parts) } satisfies Run;
  }

  before(async () => {
    s = await startContractServer();
    dir = mkdtempSync(join(tmpdir(), 'kl-cli-remote-'));
    writeFileSync(join(dir, 'ops.token'), `${await s.jwt('ops-team', ['admin:*'])}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'reader.token'), await s.jwt('reader', [`read:${T1}`]), { mode: 0o600 });
    writeFileSync(join(dir, 'ca.pem'), s.ca);
    // The environment names the server; each test picks its token.
    env = { KEYLEDGER_SERVER: s.url, KEYLEDGER_CA_FILE: 'ca.pem', KEYLEDGER_STORE: '' };
  });
  after(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs admin commands on the server: the principal is the actor, the reason is recorded', async () => {
    s.ledger.provider.setKey(keyScope(T1, 'orders'), 'k1');
    const enabled = await cli([
      'enable-key-management',
      'name=tenant-1:orders',
      '--token-file',
      'ops.token',
      '--reason',
      'onboarding',
    ]);
    assert.equal(enabled.code, 0, enabled.stderr);
    const status = await cli(['show-key-status', `${T1}:orders`, '--token-file', 'ops.token', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(
      (JSON.parse(status.stdout) as { state: string }[]).map((k) => k.state),
      ['ACTIVE'],
    );
    const text = await cli(['show-key-status', `${T1}:orders`, '--token-file', 'ops.token']);
    assert.match(text.stdout, /marker ACTIVE\n/);
    const history = await cli(['history', `${T1}:orders`, '--json'], {
      env: { KEYLEDGER_TOKEN_FILE: 'ops.token' },
    });
    assert.equal(history.code, 0, history.stderr);
    const [first] = JSON.parse(history.stdout) as { actor: string; reason: string }[];
    assert.equal(first?.actor, 'ops-team');
    assert.equal(first?.reason, 'onboarding');
  });

  it('encrypts stdin to stdout and decrypts it back through the server', async () => {
    const plaintext = Buffer.from('row 17: card ending 4242');
    const sealed = await cli(['encrypt', T1, '--namespace', 'orders', '--token-file', 'ops.token'], {
      input: plaintext,
    });
    assert.equal(sealed.code, 0, sealed.stderr);
    assert.ok(sealed.bytes.length > plaintext.length);
    const opened = await cli(['decrypt', '--custodian', T1, '--token-file', 'ops.token'], {
      input: sealed.bytes,
    });
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.bytes, plaintext);
    const tampered = Buffer.from(sealed.bytes);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const failed = await cli(['decrypt', '--token-file', 'ops.token'], { input: tampered });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^error ERR_DECRYPTION_FAILED:/m);
  });

  it('401 and 403 exit 2 with the server’s code; nothing written', async () => {
    const head = await s.ledger.head();
    const anonymous = await cli(['list-scopes']);
    assert.equal(anonymous.code, 2);
    assert.match(anonymous.stderr, /^error ERR_UNAUTHENTICATED:/);
    const denied = await cli([
      'rotate-managed-key',
      `${T1}:orders`,
      '--token-file',
      'reader.token',
      '--json',
    ]);
    assert.equal(denied.code, 2);
    const error = JSON.parse(denied.stderr) as { code: string; details: unknown };
    assert.equal(error.code, 'ERR_FORBIDDEN');
    assert.deepEqual(error.details, { principal: 'reader', permission: 'operate', custodian: T1 });
    const other = await cli(['show-key-status', `${T2}:orders`, '--token-file', 'reader.token']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /^error ERR_FORBIDDEN:/);
    assert.equal(await s.ledger.head(), head);
  });

  it('refuses --actor, --store, init, audit export --out, a missing or shared token file with --server', async () => {
    for (const args of [
      ['list-scopes', '--actor', 'someone-else'],
      ['list-scopes', '--store', 'memory:'],
      ['init'],
      ['audit', 'export', '--out', 'x.jsonl'],
    ]) {
      const run = await cli([...args, '--token-file', 'ops.token']);
      assert.equal(run.code, 2, args.join(' '));
      assert.match(run.stderr, /^error ERR_INVALID_ARGUMENT:/, args.join(' '));
    }
    const missing = await cli(['list-scopes', '--token-file', 'no-such.token']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error ERR_INVALID_CONFIG:/);
    writeFileSync(join(dir, 'shared.token'), await s.jwt('ops-team', ['admin:*']), { mode: 0o644 });
    chmodSync(join(dir, 'shared.token'), 0o644);
    const shared = await cli(['list-scopes', '--token-file', 'shared.token', '--json']);
    assert.equal(shared.code, 2);
    const error = JSON.parse(shared.stderr) as { code: string; details: { mode?: string } };
    assert.equal(error.code, 'ERR_INVALID_CONFIG');
    assert.equal(error.details.mode, '0644');
  });

  it('an unreachable server exits 1 with ERR_SERVER_UNAVAILABLE, and the token is never printed', async () => {
    const url = `https://127.0.0.1:${await closedPort()}`;
    const run = await cli(['list-scopes', '--server', url, '--token-file', 'ops.token']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error ERR_SERVER_UNAVAILABLE:/);
    const token = (await s.jwt('ops-team', ['admin:*'])).split('.')[0] ?? '';
    assert.ok(!run.stderr.includes(token));
  });

  it('streams the audit export from the server to stdout', async () => {
    const run = await cli(['audit', 'export', '--token-file', 'ops.token']);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.bytes.toString('utf8').trim().split('\n');
    assert.ok(lines.length > 3);
    for (const line of lines) JSON.parse(line);
  });
});
