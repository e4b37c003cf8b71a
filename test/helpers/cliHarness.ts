import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';

/**
 * The e2e tests drive the built CLI as a user would: one process per command, in a temp dir set up
 * by `init`. This is the one copy of that harness, so every e2e file runs the CLI the same way and
 * checks a refusal the same way (exit status, `error CODE:` on stderr, store head unchanged).
 */

/** The built CLI (`npm test` builds first); KEYLEDGER_E2E_BIN points the tests at another build. */
export const CLI_BIN =
  process.env.KEYLEDGER_E2E_BIN ?? new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

/** Fails a `before` hook with a hint when the CLI was not built, instead of every test failing obscurely. */
export function requireBuiltCli(): void {
  assert.ok(existsSync(CLI_BIN), `${CLI_BIN} is missing: run npm run build (npm test does)`);
}

/**
 * The environment for a CLI process: KEYLEDGER_STORE is emptied so a developer's own setting cannot
 * point a test at a real store, and the actor is fixed so recorded events are predictable.
 */
export function cliEnv(actor = 'e2e', extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, KEYLEDGER_STORE: '', KEYLEDGER_ACTOR: actor, ...extra };
}

export interface CliRun {
  readonly code: number | null;
  /** stdout as bytes (ciphertext from `encrypt`), and as UTF-8 text. */
  readonly bytes: Buffer;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliCall {
  /** Added to (and overriding) the harness environment, e.g. a keystore password variable. */
  readonly env?: Record<string, string>;
  /** Piped to the command's stdin. */
  readonly input?: Buffer;
}

export interface CliHarnessOptions {
  /** KEYLEDGER_ACTOR for every command; default `e2e`. */
  readonly actor?: string;
  /** Kills a hung command so the test fails instead of hanging; default 30 s (a remote store needs more). */
  readonly timeoutMs?: number;
  /**
   * Whether a refusal's `error CODE:` must open stderr rather than appear anywhere in it. Each e2e file
   * keeps the check it was written with.
   */
  readonly errorAtStart?: boolean;
}

export interface CliHarness {
  /** The environment every command runs with (for tests that spawn the CLI themselves). */
  readonly env: NodeJS.ProcessEnv;
  /** Runs a command; asserts nothing. */
  keyledger(cwd: string, args: readonly string[], call?: CliCall): CliRun;
  /** Runs a command that must exit 0. */
  succeeded(cwd: string, args: readonly string[], call?: CliCall): CliRun;
  /** Runs a command that must exit 0; its stdout. */
  ok(cwd: string, args: readonly string[], call?: CliCall): string;
  /**
   * Runs a command that must fail with `code` and exit status `exit` (2 for bad input or a broken rule,
   * 1 for a fault), and checks nothing was written: the store head did not move (when there is a store).
   */
  refused(cwd: string, args: readonly string[], code: string, exit?: number, call?: CliCall): Promise<CliRun>;
}

export function cliHarness(options: CliHarnessOptions = {}): CliHarness {
  const env = cliEnv(options.actor);
  const timeout = options.timeoutMs ?? 30_000;
  const anchor = options.errorAtStart === true ? '^' : '';

  function keyledger(cwd: string, args: readonly string[], call: CliCall = {}): CliRun {
    const result = spawnSync(process.execPath, [CLI_BIN, ...args], {
      cwd,
      input: call.input,
      encoding: 'buffer',
      env: { ...env, ...call.env },
      timeout,
    });
    return {
      code: result.status,
      bytes: result.stdout,
      stdout: result.stdout.toString('utf8'),
      stderr: result.stderr.toString('utf8'),
    };
  }

  function succeeded(cwd: string, args: readonly string[], call?: CliCall): CliRun {
    const run = keyledger(cwd, args, call);
    assert.equal(run.code, 0, `keyledger ${args.join(' ')} failed: ${run.stderr}`);
    return run;
  }

  async function refused(
    cwd: string,
    args: readonly string[],
    code: string,
    exit = 2,
    call?: CliCall,
  ): Promise<CliRun> {
    const db = ledgerDb(cwd);
    // A command refused before `init` has no store to compare; it must not create one either.
    const before = existsSync(db) ? await storeHead(cwd) : null;
    const run = keyledger(cwd, args, call);
    assert.equal(run.code, exit, `exit status of keyledger ${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`${anchor}error ${code}:`));
    if (before !== null) assert.equal(await storeHead(cwd), before, 'nothing may be written');
    return run;
  }

  return {
    env,
    keyledger,
    succeeded,
    ok: (cwd, args, call) => succeeded(cwd, args, call).stdout,
    refused,
  };
}

/** The sqlite file `init` creates in a dev setup. */
export function ledgerDb(dir: string): string {
  return join(dir, '.keyledger', 'ledger.db');
}

/** The head position of the dev setup's sqlite store: unchanged head means nothing was written. */
export async function storeHead(dir: string): Promise<bigint> {
  const store = SqliteEventStore.open(ledgerDb(dir));
  try {
    return await store.headPosition();
  } finally {
    await store.close();
  }
}

/** Temp dirs made under one prefix and removed together in an `after` hook. */
export interface TempDirs {
  make(): string;
  removeAll(): void;
}

export function tempDirs(prefix: string): TempDirs {
  const made: string[] = [];
  return {
    make() {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    removeAll() {
      for (const dir of made) rmSync(dir, { recursive: true, force: true });
    },
  };
}
