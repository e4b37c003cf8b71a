import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';

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
