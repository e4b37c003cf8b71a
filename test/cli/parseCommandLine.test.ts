import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseCommandLine } from '../../src/cli/parseCommandLine.js';
import { isKeyledgerError } from '../../src/domain/errors.js';

// A metadata hash is 43 base64url characters: a quarter of them start with '-'.
const DASH_HASH = `-${'A'.repeat(41)}_`;

describe('parseCommandLine: key references that start with -', () => {
  it('takes a metadata hash starting with - as the positional it is', () => {
    const got = parseCommandLine(['destroy-managed-key', 'tenant-1', DASH_HASH, '--grace', '0s']);
    assert.equal(got.kind, 'run');
    if (got.kind !== 'run') return;
    assert.deepEqual(got.input, { scope: 'tenant-1', key: DASH_HASH, grace: '0s' });
  });

  it('keeps the order of positionals around it', () => {
    const got = parseCommandLine(['--json', 'cancel-destroy', 'tenant-1:ns', DASH_HASH]);
    assert.equal(got.kind, 'run');
    if (got.kind !== 'run') return;
    assert.deepEqual(got.input, { scope: 'tenant-1:ns', key: DASH_HASH });
  });

  it('still refuses a short option that is not a key reference', () => {
    assert.throws(
      () => parseCommandLine(['destroy-managed-key', 'tenant-1', '-x']),
      (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT') && /unknown option -x/.test(error.message),
    );
    // One character short of a hash: an option, refused.
    assert.throws(
      () => parseCommandLine(['destroy-managed-key', 'tenant-1', DASH_HASH.slice(0, 42)]),
      (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT') && /unknown option -A/.test(error.message),
    );
  });
});

describe('parseCommandLine: serve', () => {
  it('reads its flags and the global ones', () => {
    const got = parseCommandLine([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      'c.pem',
      '--config',
      'k.json',
    ]);
    assert.equal(got.kind, 'serve');
    if (got.kind !== 'serve') return;
    assert.deepEqual(got.serve, {
      listen: '127.0.0.1:0',
      tlsCert: 'c.pem',
      tlsKey: undefined,
      clientCa: undefined,
    });
    assert.equal(got.global.config, 'k.json');
    assert.equal(got.help, false);
  });

  it('refuses arguments, --actor, and another command’s options', () => {
    for (const argv of [
      ['serve', 'now'],
      ['serve', '--actor', 'x'],
      ['serve', '--namespace', 'x'],
    ]) {
      assert.throws(
        () => parseCommandLine(argv),
        (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT'),
      );
    }
  });

  it('an operation refuses the serve flags', () => {
    assert.throws(
      () => parseCommandLine(['list-scopes', '--listen', '127.0.0.1:0']),
      (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT'),
    );
  });
});

describe('parseCommandLine: serve help', () => {
  it('help serve and serve --help ask for its help', () => {
    for (const argv of [
      ['help', 'serve'],
      ['serve', '--help'],
    ]) {
      const got = parseCommandLine(argv);
      assert.equal(got.kind, 'serve');
      if (got.kind === 'serve') assert.equal(got.help, true);
    }
  });
});

describe('parseCommandLine: several scopes (enable-key-management)', () => {
  it('takes every argument after the first as scopes, and --file lines after them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyledger-scopes-file-'));
    try {
      const file = join(dir, 'scopes.txt');
      writeFileSync(file, '# onboarding\r\n  dGVuYW50LTI=:orders  \r\n\nname=tenant-3\n');
      const got = parseCommandLine(['enable-key-management', 'tenant-1:a', 'tenant-1:b', '--file', file]);
      assert.equal(got.kind, 'run');
      if (got.kind !== 'run') return;
      assert.deepEqual(got.input, {
        scope: 'tenant-1:a',
        scopes: ['tenant-1:b', 'dGVuYW50LTI=:orders', 'name=tenant-3'],
      });
      const one = parseCommandLine(['enable-key-management', 'tenant-1:a']);
      assert.deepEqual(one.kind === 'run' ? one.input : null, { scope: 'tenant-1:a' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreadable --file is a usage error; a variadic positional stays last only', () => {
    assert.throws(
      () => parseCommandLine(['enable-key-management', '--file', '/nonexistent/scopes.txt']),
      (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT') && /--file/.test(error.message),
    );
    // Other commands keep their positional count.
    assert.throws(
      () => parseCommandLine(['show-key-status', 'tenant-1:a', 'tenant-1:b']),
      (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT'),
    );
  });
});
