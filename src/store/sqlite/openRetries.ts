import { randomInt } from 'node:crypto';

/** How many times opening a file retries a busy answer, and how long it waits at most in all. */
export const OPEN_ATTEMPTS = 40;
export const OPEN_RETRY_BUDGET_MS = 10_000;

/**
 * Runs the first statements on a new connection (WAL switch, schema) again while sqlite answers
 * SQLITE_BUSY or SQLITE_LOCKED. Some of those answers come without the busy timeout being waited on
 * (switching a new file to WAL needs an exclusive lock, and a reader meeting a half-made WAL index
 * is refused at once), so eight processes opening one new file at the same moment failed with
 * "database is locked" (test/reliability/sqliteConcurrentOpen.test.ts). Each retry waits a random
 * time below a doubling bound (1 ms up to 256 ms), so the openers spread out; the statements are
 * idempotent (journal_mode, CREATE TABLE IF NOT EXISTS under BEGIN IMMEDIATE). Opening is
 * synchronous, so the wait blocks this thread, as the busy timeout itself does.
 */
export function withOpenRetries<T>(setUp: () => T): T {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return setUp();
    } catch (error) {
      const spent = Date.now() - started;
      if (!isBusy(error) || attempt + 1 >= OPEN_ATTEMPTS || spent >= OPEN_RETRY_BUDGET_MS) throw error;
      const bound = 2 ** Math.min(attempt, 8);
      sleepSync(Math.min(randomInt(bound) + 1, OPEN_RETRY_BUDGET_MS - spent));
    }
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
