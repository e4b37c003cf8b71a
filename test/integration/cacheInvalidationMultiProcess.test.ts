import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { writePkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../fixtures/cacheInvalidationChild.ts', import.meta.url));
const CHILDREN = 4;
const ASK_TIMEOUT_MS = 10_000;
const PASSWORD = 'test-password';
const CUST = Buffer.from('tenant-cache').toString('base64');
const NS = 'orders';
const PLAINTEXT = 'a record written by a child process';

interface Encrypted {
  keyId: string | null;
  candidate?: number;
  wasCached: boolean;
  iv?: string;
  tag?: string;
  ciphertext?: string;
}

/** A reader process (test/fixtures/cacheInvalidationChild.ts), driven line by line. */
class Reader {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending: ((line: string) => void)[] = [];
  readonly #buffered: string[] = [];
  stderr = '';

  constructor(dbPath: string, keystorePath: string) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', CHILD, dbPath, keystorePath], {
      cwd: ROOT,
      env: { ...process.env, KEYLEDGER_TEST_PW: PASSWORD },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const next = this.#pending.shift();
      if (next) next(line);
      else this.#buffered.push(line);
    });
  }

  async next<T>(): Promise<T> {
    const line =
      this.#buffered.shift() ??
      (await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`child ${this.#child.pid} did not answer: ${this.stderr}`)),
          ASK_TIMEOUT_MS,
        );
        this.#pending.push((received) => {
          clearTimeout(timer);
          resolve(received);
        });
      }));
    const parsed = JSON.parse(line) as T & { error?: string };
    assert.equal(parsed.error, undefined, `child ${this.#child.pid} failed: ${parsed.error} ${this.stderr}`);
    return parsed;
  }

  ask<T = Record<string, unknown>>(command: string): Promise<T> {
    this.#child.stdin.write(`${command}\n`);
    return this.next<T>();
  }

  /** Asks the child to exit; kills it if it has not after a second. Never throws. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end('exit\n');
    await Promise.race([exited, sleep(1000, undefined, { ref: false })]);
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGKILL');
      await exited;
    }
  }
}

describe('L1 invalidation across processes on one sqlite file', { timeout: 30_000 }, () => {
  let dir: string;
  let keystorePath: string;
  let store: SqliteEventStore;
  let ledger: Ledger;
  const readers: Reader[] = [];

  function provider() {
    const keystore = new KeystoreKeyProvider(
      resolveKeystoreConfig(
        { path: keystorePath, password: { env: 'KEYLEDGER_TEST_PW' }, systemKeyAlias: 'stk' },
        dir,
      ),
    );
    return new GeneratedKeyProvider({ systemKeys: keystore });
  }

  /** Decrypts a reader's record with the parent's own copy of `keyId`; throws on the wrong key. */
  async function decrypt(record: Encrypted, keyId: string): Promise<string> {
    const key = await ledger.resolver.resolveForDecrypt(keyId);
    assert.ok(key, `the parent has no usable key ${keyId}`);
    assert.ok(record.iv && record.tag && record.ciphertext);
    const decipher = createDecipheriv('aes-256-gcm', key.key.expose(), Buffer.from(record.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(record.tag, 'base64'));
    return Buffer.concat([
      decipher.update(Buffer.from(record.ciphertext, 'base64')),
      decipher.final(),
    ]).toString();
  }

  const all = <T>(command: string) => Promise.all(readers.map((r) => r.ask<T>(command)));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyledger-cache-mp-'));
    keystorePath = join(dir, 'keystore.p12');
    const stk = SecretBytes.adopt(randomBytes(32));
    writeFileSync(
      keystorePath,
      writePkcs12SecretKeys([{ alias: 'stk', key: stk }], PASSWORD, { iterations: 1000 }),
    );
    stk.zero();
    process.env.KEYLEDGER_TEST_PW = PASSWORD;
    const dbPath = join(dir, 'ledger.db');
    store = SqliteEventStore.open(dbPath, { pollIntervalMs: 5 });
    ledger = await Ledger.open({ store, provider: provider() });
    await ledger.initialise();
    for (let i = 0; i < CHILDREN; i++) readers.push(new Reader(dbPath, keystorePath));
    await Promise.all(readers.map((r) => r.next()));
  });

  after(async () => {
    // Every child ends, killed if need be, whatever the tests did.
    await Promise.all(readers.map((r) => r.stop()));
    await ledger?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a rotation and a disable by the parent reach every child; none encrypts with the old key', async () => {
    const enabled = await ledger.admin.enableKeyManagement(CUST, NS);
    const global = await ledger.admin.enableKeyManagement(CUST, '*');
    assert.ok(enabled.key && global.key && global.position !== null);
    const candidates = `${NS},*`;

    // Children warm L1: the first lookup fills it, the second is answered from it.
    const cold = await all<Encrypted>(`encrypt ${global.position} ${CUST} ${candidates}`);
    const warm = await all<Encrypted>(`encrypt ${global.position} ${CUST} ${candidates}`);
    for (const [i, record] of [...cold, ...warm].entries()) {
      assert.equal(record.keyId, enabled.key.keyId);
      assert.equal(record.candidate, 0);
      assert.equal(record.wasCached, i >= CHILDREN);
      assert.equal(await decrypt(record, enabled.key.keyId), PLAINTEXT);
    }

    // The parent rotates; after waiting for the position the call returned, every child misses L1
    // (its entry was invalidated), resolves the new key and encrypts with it.
    const rotated = await ledger.admin.rotateManagedKey(CUST, NS);
    assert.ok(rotated?.position);
    assert.notEqual(rotated.key.keyId, enabled.key.keyId);
    const afterRotation = await all<Encrypted>(`encrypt ${rotated.position} ${CUST} ${candidates}`);
    for (const record of afterRotation) {
      assert.equal(record.keyId, rotated.key.keyId, 'a child encrypted with the old key');
      assert.equal(record.candidate, 0);
      assert.equal(record.wasCached, false, 'the rotation did not evict the child’s L1 entry');
      assert.equal(await decrypt(record, rotated.key.keyId), PLAINTEXT);
      await assert.rejects(() => decrypt(record, enabled.key?.keyId ?? ''), /auth/i);
    }
    // The old key is INACTIVE: it still decrypts everywhere.
    for (const answer of await all<{ usable: boolean }>(`usable ${enabled.key.keyId}`)) {
      assert.equal(answer.usable, true);
    }

    // The parent disables the new key: the next candidate (`*`) takes over, the single-candidate
    // target has no key, and the disabled key no longer decrypts.
    const disabled = await ledger.admin.disableManagedKey(CUST, NS, rotated.key.metadataHash);
    assert.ok(disabled.position);
    const afterDisable = await all<Encrypted>(`encrypt ${disabled.position} ${CUST} ${candidates}`);
    for (const record of afterDisable) {
      assert.equal(record.keyId, global.key.keyId);
      assert.equal(record.candidate, 1);
      assert.equal(await decrypt(record, global.key.keyId), PLAINTEXT);
    }
    for (const record of await all<Encrypted>(`encrypt ${disabled.position} ${CUST} ${NS}`)) {
      assert.equal(record.keyId, null);
    }
    for (const answer of await all<{ usable: boolean }>(`usable ${rotated.key.keyId}`)) {
      assert.equal(answer.usable, false, 'a child can still decrypt with the disabled key');
    }
  });

  it('children resolving in a loop never use a key older than the one active at the position they had applied', async () => {
    const first = await ledger.admin.enableKeyManagement(CUST, 'loop');
    assert.ok(first.key && first.position !== null);
    await all(`wait ${first.position}`);
    // Keys in the order they became ACTIVE, with the position from which each one is current.
    const keys: { keyId: string; from: bigint }[] = [{ keyId: first.key.keyId, from: first.position }];
    const looping = all<{ samples: [string, string | null][] }>(`loop 1500 ${CUST} loop`);
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      const rotated = await ledger.admin.rotateManagedKey(CUST, 'loop');
      assert.ok(rotated?.position);
      keys.push({ keyId: rotated.key.keyId, from: rotated.position });
    }
    const rank = new Map(keys.map((k, i) => [k.keyId, i]));
    let samples = 0;
    const seen = new Set<string>();
    for (const { samples: list } of await looping) {
      for (const [before, keyId] of list) {
        assert.ok(keyId !== null && rank.has(keyId), `unknown key ${keyId}`);
        seen.add(keyId);
        const applied = BigInt(before);
        const current = keys.findLastIndex((k) => k.from <= applied);
        assert.ok(
          (rank.get(keyId) ?? -1) >= current,
          `at position ${applied} a child used key #${rank.get(keyId)} while #${current} was active`,
        );
        samples++;
      }
    }
    assert.ok(samples > 100, `only ${samples} lookups`);
    assert.ok(seen.size > 1, 'the children never saw a rotation while looping');
  });
});
