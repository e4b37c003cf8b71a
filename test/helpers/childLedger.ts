import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { after, before } from 'node:test';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { writePkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

const CHILD = new URL('../fixtures/ledgerChild.ts', import.meta.url).pathname;

/** A ledger in another Node process (test/fixtures/ledgerChild.ts), driven line by line. */
export class ChildLedger {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: Interface;
  readonly #pending: ((line: string) => void)[] = [];
  readonly #buffered: string[] = [];

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout });
    this.#lines.on('line', (line) => {
      const next = this.#pending.shift();
      if (next) next(line);
      else this.#buffered.push(line);
    });
  }

  static async start(dbPath: string, keystorePath: string, password: string): Promise<ChildLedger> {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dbPath, keystorePath], {
      env: { ...process.env, KEYLEDGER_TEST_PW: password },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const ledger = new ChildLedger(child);
    const ready = await Promise.race([
      ledger.#next(),
      new Promise<string>((_, reject) =>
        child.once('exit', (code) => reject(new Error(`child exited with ${code}: ${stderr}`))),
      ),
    ]);
    if (!ready.includes('ready')) throw new Error(`child did not start: ${ready} ${stderr}`);
    return ledger;
  }

  async ask<T = Record<string, unknown>>(command: string): Promise<T> {
    this.#child.stdin.write(`${command}\n`);
    return JSON.parse(await this.#next()) as T;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end('exit\n');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  #next(): Promise<string> {
    const line = this.#buffered.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => this.#pending.push(resolve));
  }
}

/** The keystore a ledger on sqlite and its child processes share (see useSqliteLedgerKeystore). */
export interface SqliteLedgerKeystore {
  /** The temporary directory of the file: the keystore lives in it, and so may the ledger's database. */
  readonly dir: string;
  readonly keystorePath: string;
  readonly password: string;
  /** A generated-key provider whose system key is the keystore's 'stk'. */
  provider(): GeneratedKeyProvider;
}

/**
 * Call at the top of a test file: before its tests, a temporary directory with a PKCS#12 keystore
 * holding one system key ('stk', password in KEYLEDGER_TEST_PW) for the ledger in this process and
 * for ChildLedger.start(path, keystore.keystorePath, keystore.password); after them the directory goes.
 */
export function useSqliteLedgerKeystore(dirPrefix: string): SqliteLedgerKeystore {
  const password = 'test-password';
  let dir: string | undefined;
  let keystorePath: string | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), dirPrefix));
    keystorePath = join(dir, 'keystore.p12');
    const stk = SecretBytes.adopt(randomBytes(32));
    writeFileSync(
      keystorePath,
      writePkcs12SecretKeys([{ alias: 'stk', key: stk }], password, { iterations: 1000 }),
    );
    stk.zero();
    process.env.KEYLEDGER_TEST_PW = password;
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const ready = (value: string | undefined): string => {
    if (value === undefined)
      throw new Error('the sqlite ledger keystore is made in before(): use it in a test');
    return value;
  };
  return {
    get dir() {
      return ready(dir);
    },
    get keystorePath() {
      return ready(keystorePath);
    },
    password,
    provider() {
      const keystore = new KeystoreKeyProvider(
        resolveKeystoreConfig(
          { path: ready(keystorePath), password: { env: 'KEYLEDGER_TEST_PW' }, systemKeyAlias: 'stk' },
          ready(dir),
        ),
      );
      return new GeneratedKeyProvider({ systemKeys: keystore });
    },
  };
}
