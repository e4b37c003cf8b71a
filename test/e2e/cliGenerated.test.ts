import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { COMMANDS } from '../../src/cli/commandLine.js';
import { runCli } from '../../src/cli/runCli.js';
import { storeHead, tempDirs } from '../helpers/cliHarness.js';

/**
 * The CLI as the operation table generates it: help, completion, --json errors, naming custodians and
 * keys, the recorded store, escaping. Run in process (runCli) for speed; the other e2e files drive the
 * built binary.
 */

const dirs = tempDirs('keyledger-gen-');
/** Control characters but the newline (what output must never carry raw). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
after(() => dirs.removeAll());

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(cwd: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    cwd,
    env: { KEYLEDGER_ACTOR: 'gen', ...env },
    isTty: false,
  });
  return { code, stdout, stderr };
}

async function ok(cwd: string, args: readonly string[], env?: Record<string, string>): Promise<string> {
  const run = await cli(cwd, args, env);
  assert.equal(run.code, 0, `keyledger ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

async function initialised(): Promise<string> {
  const dir = dirs.make();
  await ok(dir, ['init']);
  return dir;
}

describe('help and completion, generated from the operation table', () => {
  it('every command has its own help, with its own options', async () => {
    const dir = dirs.make();
    const help = await ok(dir, ['rotate-managed-key', '--help']);
    assert.match(help, /^usage: keyledger rotate-managed-key/);
    assert.match(help, /<scope>/);
    assert.ok(!help.includes('history'), 'not the global usage');
    assert.equal(await ok(dir, ['help', 'rotate-managed-key']), help);
    const history = await ok(dir, ['history', '--help']);
    assert.match(history, /--key <key>/);
    const rewrap = await ok(dir, ['help', 'rewrap']);
    for (const flag of ['--status', '--resume <campaign-id>', '--batch <n>', '--max-batches <n>']) {
      assert.ok(rewrap.includes(flag), flag);
    }
    const usage = await ok(dir, ['--help']);
    for (const command of COMMANDS) assert.ok(usage.includes(`  ${command.name}`), command.name);
    for (const flag of [
      '--key',
      '--at',
      '--types',
      '--scope',
      '--from',
      '--since',
      '--until',
      '--file',
      '--anchor',
      '--out',
      '--namespace',
      '--batch',
      '--resume',
      '--grace',
      '--aad',
    ]) {
      assert.ok(usage.includes(flag), flag);
    }
    const unknown = await cli(dir, ['help', 'no-such']);
    assert.equal(unknown.code, 2);
  });

  it('bash completion lists commands and each command’s options', () => {
    const dir = dirs.make();
    const script = join(dir, 'keyledger.bash');
    let text = '';
    void runCli(['completion', 'bash'], {
      stdout: (t) => {
        text += t;
      },
      stderr: () => {},
      cwd: dir,
      env: {},
      isTty: false,
    });
    writeFileSync(script, text);
    const complete = (words: string[]) => {
      const r = spawnSync(
        'bash',
        [
          '-c',
          `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _keyledger; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean);
    };
    const commands = complete(['keyledger', '']);
    for (const name of [
      'init',
      'rotate-managed-key',
      'list-scopes',
      'audit',
      'rewrap',
      'help',
      'completion',
    ]) {
      assert.ok(commands.includes(name), name);
    }
    assert.deepEqual(complete(['keyledger', 'rotate-']).sort(), [
      'rotate-due-keys',
      'rotate-managed-key',
      'rotate-stk',
    ]);
    const historyFlags = complete(['keyledger', 'history', '--']);
    assert.ok(historyFlags.includes('--key') && historyFlags.includes('--json'), historyFlags.join(' '));
    assert.ok(!historyFlags.includes('--grace'));
    assert.deepEqual(complete(['keyledger', 'audit', '']), ['export']);
    assert.ok(complete(['keyledger', 'audit', 'export', '--']).includes('--out'));
    assert.ok(complete(['keyledger', 'rewrap', '--st']).includes('--status'));
  });

  it('zsh completion names every command; an unknown shell is a usage error', async () => {
    const dir = dirs.make();
    const zsh = await ok(dir, ['completion', 'zsh']);
    assert.match(zsh, /^#compdef keyledger/);
    for (const command of COMMANDS) assert.ok(zsh.includes(`'${command.words[0]}:`), command.name);
    assert.equal((await cli(dir, ['completion', 'fish'])).code, 2);
  });
});

describe('errors', () => {
  it('--json: an error is one JSON object on stderr, exit codes unchanged', async () => {
    const dir = await initialised();
    const bad = await cli(dir, ['rotate-managed-key', 'tenant-1:orders', '--json']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, '');
    const lines = bad.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1);
    const error = JSON.parse(lines[0] ?? '') as { code: string; message: string; details: unknown };
    assert.equal(error.code, 'ERR_INVALID_CUSTODIAN');
    assert.match(error.message, /name=tenant-1/);
    assert.deepEqual(Object.keys(error).sort(), ['code', 'details', 'message']);
    const usage = await cli(dir, ['--json', 'rotate-managed-key']);
    assert.equal(JSON.parse(usage.stderr).code, 'ERR_INVALID_ARGUMENT');
    const rule = await cli(dir, ['rotate-managed-key', 'name=nobody', '--json']);
    assert.equal(rule.code, 2);
    assert.equal(JSON.parse(rule.stderr).code, 'ERR_KEY_MANAGEMENT_NOT_ENABLED');
    const fault = await cli(dir, ['resolve', 'name=nobody', '--json']);
    assert.equal(fault.code, 1);
    assert.equal(JSON.parse(fault.stderr).code, 'ERR_NO_ACTIVE_KEY');
  });

  it('an unknown option is named cleanly, pointing at the command’s help; nothing is written', async () => {
    const dir = await initialised();
    const before = await storeHead(dir);
    const run = await cli(dir, ['rotate-managed-key', 'name=t', '--bogus']);
    assert.equal(run.code, 2);
    assert.equal(
      run.stderr,
      'error ERR_INVALID_ARGUMENT: unknown option --bogus; see keyledger rotate-managed-key --help\n',
    );
    const foreign = await cli(dir, ['rotate-managed-key', 'name=t', '--grace', '1d']);
    assert.match(foreign.stderr, /rotate-managed-key does not take --grace/);
    const missing = await cli(dir, ['history', 'name=t', '--key']);
    assert.match(missing.stderr, /^error ERR_INVALID_ARGUMENT: --key takes a value/);
    assert.equal(await storeHead(dir), before);
  });
});

describe('naming custodians and keys', () => {
  it('name=<tenant> is the tenant’s plain name; base64 stays HBase’s form; a hint for base64 that is no text', async () => {
    const dir = await initialised();
    const enabled = await cli(dir, ['enable-key-management', 'name=tenant-1:orders']);
    assert.equal(enabled.code, 0, enabled.stderr);
    assert.match(enabled.stdout, /^dGVuYW50LTE=:orders: marker ACTIVE/);
    assert.equal(enabled.stderr, '');
    const acme = await cli(dir, ['enable-key-management', 'acme:records']);
    assert.equal(acme.code, 0);
    assert.match(acme.stdout, /^acme:records: marker ACTIVE/);
    assert.match(
      acme.stderr,
      /custodian acme is base64 for the bytes 69c99e; for the tenant named acme write name=acme/,
    );
    const scopes = await ok(dir, ['list-scopes']);
    assert.match(scopes, /dGVuYW50LTE=:orders +ACTIVE +1 /);
    assert.match(scopes, /acme:records +ACTIVE +1 /);
    const json = JSON.parse(await ok(dir, ['list-scopes', '--json'])) as {
      custodian: string;
      keys: unknown[];
    }[];
    assert.deepEqual(json.map((s) => s.custodian).sort(), ['acme', 'dGVuYW50LTE=']);
  });

  it('a key is named by its metadata hash or its key id wherever a key is named; resolve shows both', async () => {
    const dir = await initialised();
    await ok(dir, ['enable-key-management', 'name=t:orders']);
    const [key] = JSON.parse(await ok(dir, ['show-key-status', 'name=t:orders', '--json'])) as {
      keyId: string;
      metadataHash: string;
    }[];
    assert.ok(key);
    const resolved = await ok(dir, ['resolve', 'name=t', '--namespace', 'orders']);
    assert.ok(resolved.includes(key.keyId) && resolved.includes(key.metadataHash), resolved);
    await ok(dir, ['rotate-managed-key', 'name=t:orders']);
    const disabled = await ok(dir, ['disable-managed-key', 'name=t:orders', key.keyId]);
    assert.match(disabled, new RegExp(`DISABLED +${key.metadataHash}`));
    await ok(dir, ['enable-managed-key', 'name=t:orders', key.metadataHash]);
    const history = JSON.parse(
      await ok(dir, ['history', 'name=t:orders', '--key', key.keyId, '--json']),
    ) as unknown[];
    assert.ok(history.length >= 3);
    await ok(dir, ['destroy-managed-key', 'name=t:orders', key.keyId, '--grace', '1d']);
    await ok(dir, ['cancel-destroy', 'name=t:orders', key.keyId]);
    const unknown = await cli(dir, ['disable-managed-key', 'name=t:orders', 'f'.repeat(32)]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^error ERR_KEY_NOT_FOUND:/);
  });
});

describe('the store init initialised', () => {
  it('init records the store; an empty store elsewhere is a clear error, not advice to init', async () => {
    const dir = dirs.make();
    await ok(dir, ['init'], { KEYLEDGER_STORE: 'sqlite:elsewhere.db' });
    const config = JSON.parse(readFileSync(join(dir, 'keyledger.config.json'), 'utf8')) as Record<
      string,
      string
    >;
    assert.equal(config.store, `sqlite:${join(dir, 'elsewhere.db')}`);
    assert.equal(config.initialisedStore, `sqlite:${join(dir, 'elsewhere.db')}`);
    // Without the variable, later commands use the recorded store.
    await ok(dir, ['enable-key-management', 'name=t']);
    const other = await cli(dir, ['enable-key-management', 'name=t', '--store', 'sqlite:other.db']);
    assert.equal(other.code, 2);
    assert.match(
      other.stderr,
      /^error ERR_LEDGER_NOT_INITIALISED: the store in use, sqlite:.*other\.db, holds no ledger, but .* records that init initialised the ledger in sqlite:.*elsewhere\.db/,
    );
    assert.ok(!/run init|keyledger init/.test(other.stderr), 'no advice to init');
    const read = await cli(dir, ['show-key-status', 'name=t', '--store', 'sqlite:other.db']);
    assert.equal(read.code, 2, 'reads refuse too: an empty answer would mislead');
  });

  it('credentials in a store URL never go into the config', async () => {
    const dir = dirs.make();
    const run = await cli(dir, ['init', '--store', 'esdb://admin:hunter2@127.0.0.1:1?tls=false']);
    assert.notEqual(run.code, 0); // nothing listens there
    assert.ok(!readFileSync(join(dir, 'keyledger.config.json'), 'utf8').includes('hunter2'));
  });
});

describe('output is safe for a terminal', () => {
  it('control characters from the ledger are escaped in tables and text; JSON stays JSON', async () => {
    const dir = await initialised();
    const evil = 'x\u001b[2J\u001b[Hverified\u009b';
    await ok(dir, ['enable-key-management', `name=t:${evil}`, '--reason', 'r\u0007']);
    for (const args of [
      ['show-key-status', `name=t:${evil}`],
      ['list-scopes'],
      ['history', `name=t:${evil}`],
      ['enable-key-management', `name=t:${evil}`],
    ]) {
      const out = await ok(dir, args);
      assert.ok(!CONTROL.test(out), `${args[0]}: ${JSON.stringify(out)}`);
      const escaped = args[0] === 'history' ? 'r\\x07' : 'x\\x1b[2J\\x1b[Hverified\\x9b';
      assert.ok(out.includes(escaped), out);
    }
    const json = await ok(dir, ['list-scopes', '--json']);
    assert.ok(!CONTROL.test(json));
    assert.equal((JSON.parse(json) as { namespace: string }[])[0]?.namespace, evil);
    const error = await cli(dir, ['disable-managed-key', `name=t:${evil}`, 'f'.repeat(32)]);
    assert.ok(!CONTROL.test(error.stderr), error.stderr);
  });
});
