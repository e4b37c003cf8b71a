import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicyOptions {
  /** Decisions (tries) before a lost race is reported as the conflict. Default 16. */
  readonly maxDecisions?: number;
  /** The smallest backoff unit, ms, for stores faster than this (in-memory). Default 1. */
  readonly minUnitMs?: number;
  /** How many times the window doubles at most: it stops at unit × 2^this. Default 6 (64 tries' worth). */
  readonly maxDoublings?: number;
  /** The largest backoff window, ms, however slow the store. Default 2000. */
  readonly maxWindowMs?: number;
  /** Weight of the newest observation in the latency average (0 < w ≤ 1). Default 0.2. */
  readonly latencyWeight?: number;
  /** Uniform in [0, 1); injectable so tests can fix the jitter. Default Math.random. */
  readonly random?: () => number;
  /** A monotonic clock in ms; injectable for tests. Default performance.now. */
  readonly now?: () => number;
  /** Injectable for tests. Default timers/promises setTimeout. */
  readonly sleep?: (ms: number) => Promise<unknown>;
}

/**
 * How long a loser of an optimistic-concurrency race waits before deciding again. The window a
 * decision is exposed to a race is one try (load, decide, append): a few microseconds in memory, a
 * few round trips over gRPC. A fixed backoff fits one store and not the other: capped at 50 ms,
 * twelve racers over a network kept colliding until their decisions ran out. So the unit is the
 * store's observed try latency (a moving average), the window doubles per lost race (full jitter:
 * uniform in [0, unit × 2^n), n capped), and racers spread over many tries' worth of time within a
 * few rounds. Twelve racers on one stream need about log2(12) rounds to spread; 16 decisions leave
 * room for an unlucky tail.
 */
export class RetryPolicy {
  readonly maxDecisions: number;
  readonly #minUnitMs: number;
  readonly #maxDoublings: number;
  readonly #maxWindowMs: number;
  readonly #weight: number;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;
  #latencyMs: number | null = null;

  constructor(options: RetryPolicyOptions = {}) {
    this.maxDecisions = options.maxDecisions ?? 16;
    this.#minUnitMs = options.minUnitMs ?? 1;
    this.#maxDoublings = options.maxDoublings ?? 6;
    this.#maxWindowMs = options.maxWindowMs ?? 2000;
    this.#weight = options.latencyWeight ?? 0.2;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? ((ms) => sleep(ms));
    if (!Number.isInteger(this.maxDecisions) || this.maxDecisions < 1) {
      throw new TypeError('maxDecisions must be a positive integer');
    }
    if (!(this.#minUnitMs > 0) || !(this.#maxWindowMs >= this.#minUnitMs)) {
      throw new TypeError('need 0 < minUnitMs ≤ maxWindowMs');
    }
    if (!Number.isInteger(this.#maxDoublings) || this.#maxDoublings < 0) {
      throw new TypeError('maxDoublings must be a non-negative integer');
    }
    if (!(this.#weight > 0 && this.#weight <= 1)) throw new TypeError('latencyWeight must be in (0, 1]');
  }

  /** The moving average of observed try durations, or null before the first. */
  get latencyMs(): number | null {
    return this.#latencyMs;
  }

  /** Records how long one try took (won or lost). */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.#latencyMs = this.#latencyMs === null ? ms : this.#latencyMs + this.#weight * (ms - this.#latencyMs);
  }

  /** The wait after losing race number `lost` (1 for the first loss). */
  backoffMs(lost: number): number {
    const unit = Math.max(this.#minUnitMs, this.#latencyMs ?? 0);
    const window = Math.min(this.#maxWindowMs, unit * 2 ** Math.min(Math.max(lost, 1), this.#maxDoublings));
    return this.#random() * window;
  }

  /** Times `attempt`, feeding its duration into the average. */
  async timed<T>(attempt: () => Promise<T>): Promise<T> {
    const start = this.#now();
    try {
      return await attempt();
    } finally {
      this.observe(this.#now() - start);
    }
  }

  /** Waits out the backoff after losing race number `lost`. */
  async backOff(lost: number): Promise<void> {
    await this.#sleep(this.backoffMs(lost));
  }
}

/** One policy per store object, so each learns its own store's latency. */
const policies = new WeakMap<object, RetryPolicy>();

export function retryPolicyFor(store: object): RetryPolicy {
  let policy = policies.get(store);
  if (policy === undefined) {
    policy = new RetryPolicy();
    policies.set(store, policy);
  }
  return policy;
}
