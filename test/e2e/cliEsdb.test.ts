import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import { cliHarness, requireBuiltCli } from '../helpers/cliHarness.js';
import { closedPort } from '../helpers/closedPort.js';

/**
 * A CLI session on EventStoreDB: the protocol-level test server runs as its own process, started
 * by scripts/esdb-test-server.ts as a user would (`npm run esdb:test-server`), and the built CLI
 * talks to it with `--store esdb://127.0.0.1:<port>?tls=false` (or KEYLEDGER_STORE).
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const TENANT = Buffer.from('tenant-esdb').toString('base64');
const SCOPE = `${TENANT}:orders`;

const { keyledger, ok } = cliHarness({ actor: 'e2e-esdb', timeoutMs: 60_000 });

/** Starts the test server script; resolves with its connection string (its first stdout line). */
function startServerProcess(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/esdb-test-server.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', (line) => resolve({ child, url: line.trim() }));
    child.once('exit', (code) =>
      reject(new Error(`the test server exited (${code}) before its URL: ${stderr}`)),
    );
  });
}

async function stopServerProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('keyledger CLI on EventStoreDB (test server process)', () => {
  let child: ChildProcess;
  let url: string;
  let dir: string;

  before(async () => {
    requireBuiltCli();
    ({ child, url } = await startServerProcess());
    assert.match(url, /^esdb:\/\/127\.0\.0\.1:\d+\?tls=false$/);
    dir = mkdtempSync(join(tmpdir(), 'keyledger-e2e-esdb-'));
  });
  after(async () => {
    await stopServerProcess(child);
    rmSync(dir, { recursive: true, force: true });
  });

  it('init with --store writes the dev config and keystore, and records the system key on the server', () => {
    const out = ok(dir, ['init', '--store', url]);
    assert.match(out, /system key +#1 identity [0-9a-f]{16}/);
    assert.match(out, new RegExp(`store +${url.replace(/[?.]/g, '\\$&')}`));
    assert.ok(existsSync(join(dir, '.keyledger', 'keystore.p12')));
    // A --store URL without credentials becomes the config's store, and init records it as the store
    // it initialised, so a later command against an empty store elsewhere fails instead of starting over.
    const config = JSON.parse(readFileSync(join(dir, 'keyledger.config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(config.store, url);
    assert.equal(config.initialisedStore, url);
  });

  it('enables, rotates, shows and lists history, with the store from KEYLEDGER_STORE', async () => {
    const env = { KEYLEDGER_STORE: url };
    ok(dir, ['enable-key-management', SCOPE, '--reason', 'onboarding'], { env });
    const shown = JSON.parse(ok(dir, ['show-key-status', SCOPE, '--json'], { env })) as {
      state: string;
      metadataHash: string;
    }[];
    assert.deepEqual(
      shown.map((key) => key.state),
      ['ACTIVE'],
    );
    const rotated = JSON.parse(
      ok(dir, ['rotate-managed-key', SCOPE, '--json', '--reason', 'yearly'], { env }),
    ) as {
      key: { metadataHash: string; state: string };
    };
    assert.equal(rotated.key.state, 'ACTIVE');
    assert.notEqual(rotated.key.metadataHash, shown[0]?.metadataHash);

    const table = ok(dir, ['show-key-status', SCOPE], { env });
    assert.match(table, /INACTIVE/);
    assert.match(table, new RegExp(rotated.key.metadataHash));

    const history = JSON.parse(ok(dir, ['history', SCOPE, '--json'], { env })) as {
      type: string;
      actor: string;
      reason: string | null;
    }[];
    assert.deepEqual(
      history.map((entry) => [entry.type, entry.actor, entry.reason]),
      [
        ['KeyManagementEnabled', 'e2e-esdb', 'onboarding'],
        ['ManagedKeyRotated', 'e2e-esdb', 'yearly'],
      ],
    );
    assert.match(ok(dir, ['history', SCOPE], { env }), /ManagedKeyRotated/);

    // What the CLI wrote is on the server, in the ledger's streams.
    const store = EsdbEventStore.open(url);
    try {
      const types: string[] = [];
      for await (const recorded of store.readAll({ streamPrefix: 'kl-scope-' })) types.push(recorded.type);
      assert.deepEqual(types, ['KeyManagementEnabled', 'ManagedKeyRotated']);
    } finally {
      await store.close();
    }
  });

  it('the --store option works like KEYLEDGER_STORE, and wins over it', () => {
    const port = url.replace(/^.*:(\d+)\?.*$/, '$1');
    const shown = JSON.parse(
      ok(dir, ['show-key-status', SCOPE, '--json', '--store', url], {
        env: { KEYLEDGER_STORE: `esdb://127.0.0.1:${Number(port) === 1 ? 2 : 1}?tls=false` },
      }),
    ) as { state: string }[];
    assert.deepEqual(
      shown.map((key) => key.state),
      ['INACTIVE', 'ACTIVE'],
    );
  });

  it('an unreachable server fails with ERR_STORE_UNAVAILABLE (exit 1), naming the URL without the password', async () => {
    const port = await closedPort();
    const run = keyledger(dir, [
      'show-key-status',
      SCOPE,
      '--store',
      `esdb://ops:hunter2@127.0.0.1:${port}?tls=false`,
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^error ERR_STORE_UNAVAILABLE: /);
    assert.ok(run.stderr.includes(`esdb://***@127.0.0.1:${port}?tls=false`), run.stderr);
    assert.ok(!run.stderr.includes('hunter2'));
  });

  it('a malformed esdb URL is bad input (exit 2), and nothing is contacted', () => {
    const run = keyledger(dir, ['show-key-status', SCOPE, '--store', 'esdb://127.0.0.1:notaport?tls=false']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^error ERR_INVALID_STORE_URL: /);
    const unknown = keyledger(dir, ['show-key-status', SCOPE, '--store', `${url}&tlsVerifyCert=false`]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /tlsVerifyCert/);
  });
});
