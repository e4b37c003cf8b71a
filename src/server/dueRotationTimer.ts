import type { DueRun } from '../ledger/dueRotations.js';
import type { Ledger } from '../ledger/ledger.js';

/** The actor the timer's rotations are recorded under (docs/configuration.md, server.rotateDueKeys). */
export const DUE_ROTATION_ACTOR = 'keyledger-serve';

export interface DueRotationTimerOptions {
  readonly ledger: Pick<Ledger, 'dueRotations'>;
  readonly everyMs: number;
  /** One JSON line per run that had something due, and per run that failed. */
  readonly log: (line: Record<string, unknown>) => void;
}

/**
 * rotate-due-keys on a timer, for `keyledger serve`: a first run at start, then one `everyMs`
 * after each run ends (runs never overlap). Several servers on one store may each run it: the
 * re-check inside every write makes one rotation per due scope. A run that fails is logged and
 * the next one tries again; stop() waits for a run in progress to reach its next safe point.
 */
export class DueRotationTimer {
  readonly #o: DueRotationTimerOptions;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> = Promise.resolve();

  constructor(options: DueRotationTimerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #schedule(ms: number): void {
    if (this.#abort.signal.aborted) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#tick().finally(() => this.#schedule(this.#o.everyMs));
    }, ms);
    // The server keeps the process alive; a pending run must not.
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    let run: DueRun;
    try {
      run = await this.#o.ledger.dueRotations.run({
        actor: DUE_ROTATION_ACTOR,
        signal: this.#abort.signal,
      });
    } catch (error) {
      // Closing the ledger under a run ends it with ERR_STORE_CLOSED: not worth a line at shutdown.
      if (this.#abort.signal.aborted) return;
      const code = (error as { code?: unknown }).code;
      this.#o.log({
        level: 'error',
        msg: 'rotate-due-keys',
        code: typeof code === 'string' ? code : 'ERR_INTERNAL',
        error: (error as Error).message,
      });
      return;
    }
    if (run.results.length === 0) return;
    this.#o.log({
      level: run.failed > 0 ? 'warn' : 'info',
      msg: 'rotate-due-keys',
      checkedAt: run.checkedAt,
      done: run.done,
      failed: run.failed,
      results: run.results.map((r) => ({
        target: r.kind === 'rotate-stk' ? '@stk' : r.scope,
        kind: r.kind,
        outcome: r.outcome,
        code: r.code,
        position: r.position,
      })),
    });
  }
}
