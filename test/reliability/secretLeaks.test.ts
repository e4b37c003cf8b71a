import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { runCli } from '../../src/cli/runCli.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { type Haystack, keyNeedles, plantKnownKeys, scanForLeaks } from '../helpers/secretScan.js';

/**
 * Secrets never leak (issue 15, part 5), the CLI scenario: a ledger whose keys are known (a keystore
 * written here), driven through the commands in process (text and --json, successes and refusals,
 * encrypt/decrypt, rotation, checkpoint, verify, audit export). Every byte of output, every stored
 * event and snapshot, and the export are searched for each key in raw, hex, base64 and base64url
 * form: there must be no hit.
 */

const TENANT = Buffer.from('tenant-1').toString('base64');

interface Captured {
  readonly args: readonly string[];
  readonly code: number;
  readonly out: Buffer;
  readonly err: string;
}

async function cli(dir: string, args: readonly string[], stdin?: Buffer): Promise<Captured> {
  let text = '';
  let err = '';
  const binary: Buffer[] = [];
  const code = await runCli(args, {
    stdout: (t) => {
      text += t;
    },
    stderr: (t) => {
      err += t;
    },
    cwd: dir,
    env: { KEYLEDGER_ACTOR: 'leak-scan' },
    isTty: false,
    stdin: Readable.from(stdin === undefined ? [] : [stdin]),
    stdoutStream: new Writable({
      write(chunk: Buffer, _encoding, done) {
        binary.push(chunk);
        done();
      },
    }),
  });
  return { args, code, out: Buffer.concat([Buffer.from(text), ...binary]), err };
}

describe('reliability: secrets never leak (CLI scenario)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-leaks-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('no key appears in any output, event, snapshot or export', { timeout: 300_000 }, async () => {
    const init = await cli(dir, ['init']);
    assert.equal(init.code, 0, init.err);
    const config = JSON.parse(readFileSync(join(dir, 'keyledger.config.json'), 'utf8')) as {
      provider: string;
      keystore: { path: string; scopes: Record<string, unknown> };
    };
    const secrets = plantKnownKeys(dir, config.keystore.path);
    const useAliases = (orders: string) => {
      config.provider = 'keystore';
      config.keystore.scopes = {
        [`${TENANT}:orders`]: { alias: orders },
        [`${TENANT}:billing`]: { alias: 'billing-v1' },
      };
      writeFileSync(join(dir, 'keyledger.config.json'), JSON.stringify(config), { mode: 0o600 });
    };
    useAliases('orders-v1');

    const runs: Captured[] = [];
    const run = async (args: string[], stdin?: Buffer) => {
      for (const json of [false, true]) runs.push(await cli(dir, json ? [...args, '--json'] : args, stdin));
    };
    await run(['enable-key-management', `${TENANT}:orders`]);
    await run(['enable-key-management', `${TENANT}:billing`]);
    useAliases('orders-v2');
    await run(['rotate-managed-key', `${TENANT}:orders`]);
    await run(['show-key-status', `${TENANT}:orders`]);
    await run(['list-scopes']);
    await run(['resolve', TENANT, '--namespace', 'orders']);
    await run(['history', `${TENANT}:orders`]);
    await run(['metrics']);
    const plaintext = Buffer.from('leak-scan plaintext '.repeat(100));
    const encrypted = await cli(dir, ['encrypt', TENANT, '--namespace', 'orders'], plaintext);
    assert.equal(encrypted.code, 0, encrypted.err);
    runs.push(encrypted);
    const decrypted = await cli(dir, ['decrypt'], encrypted.out);
    assert.equal(decrypted.code, 0, decrypted.err);
    assert.deepEqual(decrypted.out, plaintext);
    runs.push(decrypted);
    await run(['decrypt'], randomBytes(500)); // refused: ERR_DECRYPTION_FAILED
    await run(['disable-managed-key', `${TENANT}:orders`, 'A'.repeat(43)]); // refused: no such key
    await run(['set-managed-key', `${TENANT}:orders`, '{"KeyAlias":"orders-v1"}']);
    await run(['rotate-stk']);
    await run(['rewrap', '--status']);
    await run(['checkpoint']);
    await run(['verify']);
    const exportFile = join(dir, 'audit.jsonl');
    await run(['audit', 'export', '--out', exportFile]);
    assert.ok(runs.filter((r) => r.code === 0).length >= 20, 'the scenario mostly ran');
    assert.ok(
      runs.some((r) => r.code !== 0),
      'the scenario includes refusals',
    );

    const haystacks: Haystack[] = runs.flatMap((r) => [
      { where: `stdout of ${r.args.join(' ')}`, bytes: r.out },
      { where: `stderr of ${r.args.join(' ')}`, bytes: Buffer.from(r.err) },
    ]);
    haystacks.push({ where: 'the audit export', bytes: readFileSync(exportFile) });
    // The sqlite file holds the events and snapshots; scan them as stored, and the file as a whole.
    haystacks.push({ where: 'the ledger file', bytes: readFileSync(join(dir, '.keyledger', 'ledger.db')) });
    const store = SqliteEventStore.open(join(dir, '.keyledger', 'ledger.db'));
    try {
      const events: unknown[] = [];
      for await (const event of store.readAll()) events.push(event);
      const text = JSON.stringify(events, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
      haystacks.push({ where: 'the events', bytes: Buffer.from(text) });
      assert.ok(events.length > 5);
    } finally {
      await store.close();
    }

    const { scanned, hits } = scanForLeaks(keyNeedles(secrets), haystacks);
    assert.deepEqual(hits, []);
    console.log(
      `leak scan (CLI): ${runs.length} command runs, ${haystacks.length} outputs/files, ${secrets.size} keys × 5 forms, ${scanned} searches, 0 hits`,
    );
  });
});
