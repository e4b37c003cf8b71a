import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI_BIN, cliHarness, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { requireKeytool } from '../helpers/keytool.js';

/** The built CLI (`npm run build` first), as a user pipes data through it (test/helpers/cliHarness.ts). */
const TENANT = Buffer.from('tenant-1').toString('base64');
const SCOPE = `${TENANT}:orders`;
const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const HEADER = 96;
const TAG = 16;
const { ok, env: ENV } = cliHarness();

interface Exit {
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs keyledger with stdin from `input` (a file path) and stdout to `output` (a file path). */
function viaFiles(cwd: string, args: readonly string[], input: string, output: string): Exit {
  const stdin = openSync(input, 'r');
  const stdout = openSync(output, 'w');
  try {
    const result = spawnSync(process.execPath, [CLI_BIN, ...args], {
      cwd,
      env: ENV,
      stdio: [stdin, stdout, 'pipe'],
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: result.status, stderr: result.stderr };
  } finally {
    closeSync(stdin);
    closeSync(stdout);
  }
}

function exited(child: ChildProcess, timeoutMs = 30_000): Promise<Exit> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`keyledger did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

function failedWith(run: Exit, exit: number, code: string): void {
  assert.equal(run.code, exit, `exit status: ${run.stderr}`);
  assert.match(run.stderr, new RegExp(`^error ${code}:`));
}

const dirs = tempDirs('keyledger-e2e-crypto-');
after(() => dirs.removeAll());

describe('keyledger encrypt / decrypt', () => {
  let dir: string;
  let plain: string;
  let data: Buffer;
  const file = (name: string) => join(dir, name);

  before(() => {
    requireBuiltCli();
    requireKeytool();
    dir = dirs.make();
    ok(dir, ['init']);
    ok(dir, ['enable-key-management', SCOPE]);
    data = randomBytes(5 * MiB + 123);
    plain = file('plain.bin');
    writeFileSync(plain, data);
  });

  it('round-trips a 5 MiB random file through a pipe: encrypt | decrypt', async () => {
    const out = openSync(file('pipe-out.bin'), 'w');
    const input = openSync(plain, 'r');
    try {
      const encrypt = spawn(process.execPath, [CLI_BIN, 'encrypt', TENANT, '--namespace', 'orders'], {
        cwd: dir,
        env: ENV,
        stdio: [input, 'pipe', 'pipe'],
      });
      const decrypt = spawn(process.execPath, [CLI_BIN, 'decrypt'], {
        cwd: dir,
        env: ENV,
        stdio: ['pipe', out, 'pipe'],
      });
      encrypt.stdout?.pipe(decrypt.stdin as NodeJS.WritableStream);
      const [e, d] = await Promise.all([exited(encrypt), exited(decrypt)]);
      assert.equal(e.code, 0, e.stderr);
      assert.equal(d.code, 0, d.stderr);
      assert.equal(e.stderr + d.stderr, '');
    } finally {
      closeSync(out);
      closeSync(input);
    }
    assert.ok(readFileSync(file('pipe-out.bin')).equals(data), 'decrypted output equals the input');
  });

  it('writes the stream format to a file, with the namespace fallback, and reads it back', () => {
    const run = viaFiles(
      dir,
      ['encrypt', TENANT, '--namespace', 'orders/cf', '--namespace', 'orders'],
      plain,
      file('ct.bin'),
    );
    assert.equal(run.code, 0, run.stderr);
    const ct = readFileSync(file('ct.bin'));
    assert.equal(ct.length, HEADER + data.length + TAG * (Math.floor(data.length / CHUNK) + 1));
    assert.deepEqual(ct.subarray(0, 5), Buffer.from([0x4b, 0x4c, 0x45, 1, 2]));
    assert.ok(!ct.includes(data.subarray(0, 64)), 'no plaintext in the ciphertext');
    assert.equal(viaFiles(dir, ['decrypt'], file('ct.bin'), file('back.bin')).code, 0);
    assert.ok(readFileSync(file('back.bin')).equals(data));
    // An empty input is a valid (header and empty final chunk) stream.
    writeFileSync(file('empty.bin'), '');
    assert.equal(
      viaFiles(dir, ['encrypt', TENANT, '--namespace', 'orders'], file('empty.bin'), file('e.ct')).code,
      0,
    );
    assert.equal(readFileSync(file('e.ct')).length, HEADER + TAG);
    assert.equal(viaFiles(dir, ['decrypt'], file('e.ct'), file('e.out')).code, 0);
    assert.equal(readFileSync(file('e.out')).length, 0);
  });

  it('--aad must match: a mismatch exits 1 with ERR_DECRYPTION_FAILED and writes no plaintext', () => {
    const small = file('small.bin');
    writeFileSync(small, data.subarray(0, 1000));
    const args = ['encrypt', TENANT, '--namespace', 'orders', '--aad', 'row 42'];
    assert.equal(viaFiles(dir, args, small, file('aad.ct')).code, 0);
    for (const aad of [['--aad', 'row 43'], [], ['--aad', '']]) {
      failedWith(
        viaFiles(dir, ['decrypt', ...aad], file('aad.ct'), file('aad.out')),
        1,
        'ERR_DECRYPTION_FAILED',
      );
      assert.equal(readFileSync(file('aad.out')).length, 0);
    }
    assert.equal(viaFiles(dir, ['decrypt', '--aad', 'row 42'], file('aad.ct'), file('aad.out')).code, 0);
    assert.deepEqual(readFileSync(file('aad.out')), data.subarray(0, 1000));
  });

  it('decrypt --custodian: only a ciphertext under that custodian (and namespace) decrypts; any other fails alike', () => {
    const small = file('scoped.bin');
    writeFileSync(small, data.subarray(0, 2000));
    assert.equal(
      viaFiles(dir, ['encrypt', TENANT, '--namespace', 'orders'], small, file('scoped.ct')).code,
      0,
    );
    const other = Buffer.from('tenant-2').toString('base64');
    for (const expect of [
      ['--custodian', other],
      ['--custodian', 'name=tenant-2'],
      ['--custodian', TENANT, '--namespace', 'billing'],
    ]) {
      failedWith(
        viaFiles(dir, ['decrypt', ...expect], file('scoped.ct'), file('scoped.out')),
        1,
        'ERR_DECRYPTION_FAILED',
      );
      assert.equal(readFileSync(file('scoped.out')).length, 0, `no plaintext with ${expect.join(' ')}`);
    }
    for (const expect of [
      ['--custodian', TENANT],
      ['--custodian', 'name=tenant-1', '--namespace', 'billing', '--namespace', 'orders'],
    ]) {
      const run = viaFiles(dir, ['decrypt', ...expect], file('scoped.ct'), file('scoped.out'));
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(readFileSync(file('scoped.out')), data.subarray(0, 2000));
    }
    // Namespaces alone say nothing about whose data it is: refused as bad input.
    failedWith(
      viaFiles(dir, ['decrypt', '--namespace', 'orders'], file('scoped.ct'), file('scoped.out')),
      2,
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('garbage, empty and truncated input exit 1 with ERR_DECRYPTION_FAILED; only verified chunks reach stdout', () => {
    writeFileSync(file('garbage.bin'), randomBytes(300_000));
    failedWith(viaFiles(dir, ['decrypt'], file('garbage.bin'), file('g.out')), 1, 'ERR_DECRYPTION_FAILED');
    assert.equal(readFileSync(file('g.out')).length, 0);
    writeFileSync(file('nothing.bin'), '');
    failedWith(viaFiles(dir, ['decrypt'], file('nothing.bin'), file('n.out')), 1, 'ERR_DECRYPTION_FAILED');

    assert.equal(viaFiles(dir, ['encrypt', TENANT, '--namespace', 'orders'], plain, file('t.ct')).code, 0);
    const ct = readFileSync(file('t.ct'));
    writeFileSync(file('truncated.bin'), ct.subarray(0, ct.length - 1000));
    failedWith(viaFiles(dir, ['decrypt'], file('truncated.bin'), file('t.out')), 1, 'ERR_DECRYPTION_FAILED');
    const partial = readFileSync(file('t.out'));
    assert.equal(partial.length % CHUNK, 0, 'whole verified chunks only');
    assert.ok(partial.equals(data.subarray(0, partial.length)));
    const tampered = Buffer.from(ct);
    tampered[HEADER + 3 * (CHUNK + TAG) + 5] = (tampered[HEADER + 3 * (CHUNK + TAG) + 5] as number) ^ 1;
    writeFileSync(file('tampered.bin'), tampered);
    failedWith(viaFiles(dir, ['decrypt'], file('tampered.bin'), file('x.out')), 1, 'ERR_DECRYPTION_FAILED');
    assert.ok(readFileSync(file('x.out')).length <= 3 * CHUNK);
  });

  it('a bad custodian or namespace exits 2, and no ACTIVE key exits 1, without waiting for input', async () => {
    const cases: [string[], number, string][] = [
      [['encrypt', 'not base64!', '--namespace', 'orders'], 2, 'ERR_INVALID_CUSTODIAN'],
      [['encrypt', TENANT, '--namespace', 'n'.repeat(256)], 2, 'ERR_INVALID_NAMESPACE'],
      [['encrypt'], 2, 'ERR_INVALID_ARGUMENT'],
      [['decrypt', 'extra'], 2, 'ERR_INVALID_ARGUMENT'],
      [['encrypt', TENANT, '--namespace', 'never-enabled'], 1, 'ERR_NO_ACTIVE_KEY'],
    ];
    for (const [args, exit, code] of cases) {
      // stdin stays open: a command that read its input first would never exit.
      const child = spawn(process.execPath, [CLI_BIN, ...args], {
        cwd: dir,
        env: ENV,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = 0;
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.length;
      });
      const run = await exited(child, 15_000);
      child.stdin?.destroy();
      failedWith(run, exit, code);
      assert.equal(stdout, 0, 'nothing written');
    }
  });

  it('a DISABLED key cannot decrypt (exit 1); re-enabled it can', () => {
    const small = file('d.bin');
    writeFileSync(small, data.subarray(0, 5000));
    assert.equal(viaFiles(dir, ['encrypt', TENANT, '--namespace', 'orders'], small, file('d.ct')).code, 0);
    const [key] = JSON.parse(ok(dir, ['show-key-status', SCOPE, '--json'])) as { metadataHash: string }[];
    ok(dir, ['rotate-managed-key', SCOPE]);
    assert.equal(viaFiles(dir, ['decrypt'], file('d.ct'), file('d.out')).code, 0, 'INACTIVE still decrypts');
    ok(dir, ['disable-managed-key', SCOPE, key?.metadataHash ?? '']);
    failedWith(viaFiles(dir, ['decrypt'], file('d.ct'), file('d.out')), 1, 'ERR_DECRYPTION_FAILED');
    ok(dir, ['enable-managed-key', SCOPE, key?.metadataHash ?? '']);
    assert.equal(viaFiles(dir, ['decrypt'], file('d.ct'), file('d.out')).code, 0);
    assert.deepEqual(readFileSync(file('d.out')), data.subarray(0, 5000));
  });
});
