import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { buildServerChild } from './serverChildBundle.js';

const CHILD = fileURLToPath(new URL('./serverChild.ts', import.meta.url));

/**
 * How the server child runs: `bundle` (default) from an esbuild bundle of serverChild.ts and the
 * sources it imports, as users run the built CLI (scripts/build-cli.mjs bundles `keyledger serve`
 * with esbuild the same way); `tsx` from the TypeScript sources through tsx, as before the fifth
 * session (tsx keeps function names: a `__name` call on every closure made per request).
 */
export type ServerChildRunner = 'bundle' | 'tsx';

export function serverChildRunner(): ServerChildRunner {
  const runner = process.env.BENCH_SERVER_RUN ?? 'bundle';
  if (runner !== 'bundle' && runner !== 'tsx')
    throw new Error(`BENCH_SERVER_RUN: bundle or tsx, not ${runner}`);
  return runner;
}

/** What serverChild.ts announces once both servers listen. */
export interface ServedSetup {
  readonly url: string;
  readonly bareUrl: string;
  /** Echoes an octet-stream body back as it arrives. */
  readonly bareStreamUrl: string;
  /** The bare route plus a busy wait of the `x-busy-us` header's microseconds (calibration). */
  readonly bareBusyUrl: string;
  readonly bareTurnUrl: string;
  /** PEM of the CA that signed both servers' certificate. */
  readonly ca: string;
  /** JWTs made once, valid for hours: `admin:*`; `admin` over the custodian; `audit:*`. */
  readonly admin: string;
  readonly encryptor: string;
  readonly auditor: string;
  readonly custodian: string;
  readonly namespace: string;
}

/**
 * serverChild.ts in its own Node process, driven one command at a time over stdin (one JSON answer
 * a line on stdout). Its stderr passes through, so a failure in the server shows.
 */
export class ServerChildProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  readonly #reader: Interface;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    child.stderr.pipe(process.stderr);
    this.#reader = createInterface({ input: child.stdout });
    this.#lines = this.#reader[Symbol.asyncIterator]();
  }

  static async start(
    runner: ServerChildRunner = serverChildRunner(),
  ): Promise<{ child: ServerChildProcess; setup: ServedSetup }> {
    const args = runner === 'tsx' ? ['--import', 'tsx', CHILD] : [await buildServerChild(CHILD)];
    const child = new ServerChildProcess(spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    const first = (await child.#next()) as { ready?: ServedSetup };
    if (first.ready === undefined) throw new Error(`server child: ${JSON.stringify(first)}`);
    return { child, setup: first.ready };
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  /** Sends `command` and answers the child's next line, parsed. */
  async ask<T>(command: string): Promise<T> {
    this.#child.stdin.write(`${command}\n`);
    return (await this.#next()) as T;
  }

  /** Asks the child to clean up and exit; one that already died (a failed bench) is not waited for. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise<void>((done) => this.#child.once('exit', () => done()));
      this.#child.stdin.end('exit\n');
      await exited;
    }
    this.#reader.close();
  }

  async #next(): Promise<unknown> {
    const line = await this.#lines.next();
    if (line.done === true) throw new Error('the server child exited');
    return JSON.parse(line.value) as unknown;
  }
}
