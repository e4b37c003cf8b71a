import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A test fixture script in another Node process, driven by line commands on stdin and answering one
 * JSON line each (test/fixtures/importChild.ts, ledgerChild.ts). Unlike ChildLedger it can be
 * SIGKILLed on purpose, and its lines are kept for the test to read after a kill.
 */
export class LineChild {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending: ((line: string) => void)[] = [];
  readonly #buffered: string[] = [];
  stderr = '';
  readonly exited: Promise<void>;

  constructor(script: string, args: readonly string[], env: Readonly<Record<string, string>> = {}) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { ...process.env, ...env },
      stdio: 'pipe',
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const next = this.#pending.shift();
      if (next) next(line);
      else this.#buffered.push(line);
    });
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((done) => this.#child.once('exit', () => done()));
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get signal(): NodeJS.Signals | null {
    return this.#child.signalCode;
  }

  /** Waits for the script's first line, `{"ready":true}`. */
  async ready(): Promise<void> {
    const line = await Promise.race([
      this.#next(),
      this.exited.then(() => `exited ${this.#child.exitCode ?? this.#child.signalCode}: ${this.stderr}`),
    ]);
    assert.ok(line.includes('ready'), line);
  }

  /** Sends a command and parses its answer line. */
  async ask<T>(command: string): Promise<T> {
    this.send(command);
    const line = await Promise.race([
      this.#next(),
      this.exited.then(() => `{"exited":"${this.#child.exitCode ?? this.#child.signalCode}"}`),
    ]);
    return JSON.parse(line) as T;
  }

  /** Sends a command without waiting for its answer. */
  send(command: string): void {
    this.#child.stdin.write(`${command}\n`);
  }

  async kill(): Promise<void> {
    if (this.running) this.#child.kill('SIGKILL');
    await this.exited;
  }

  /** Asks the script to exit (SIGKILL after 5 s); nothing if it is gone already. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.#child.stdin.end('exit\n');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  #next(): Promise<string> {
    const line = this.#buffered.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => this.#pending.push(resolve));
  }
}
