import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeyledgerError, KeyledgerError, VersionConflictError } from '../../src/domain/errors.js';
import { retryOnConflict } from '../../src/journal/retryOnConflict.js';
import { RetryPolicy, retryPolicyFor } from '../../src/journal/retryPolicy.js';

/** A policy with fixed jitter, a hand-driven clock and recorded sleeps. */
function fixed(random: number, options: ConstructorParameters<typeof RetryPolicy>[0] = {}) {
  const clock = { now: 0 };
  const slept: number[] = [];
  const policy = new RetryPolicy({
    random: () => random,
    now: () => clock.now,
    sleep: async (ms) => {
      slept.push(ms);
    },
    ...options,
  });
  return { policy, clock, slept };
}

const conflict = () => new VersionConflictError('s', '1', '2');

describe('RetryPolicy', () => {
  it('without observations, backs off in [0, minUnit × 2^n), full jitter', () => {
    const { policy } = fixed(0.5, { minUnitMs: 1 });
    assert.equal(policy.latencyMs, null);
    assert.deepEqual(
      [1, 2, 3].map((n) => policy.backoffMs(n)),
      [1, 2, 4],
    );
    assert.equal(fixed(0).policy.backoffMs(5), 0, 'the jitter reaches zero');
  });

  it('scales the window to the observed latency (a moving average of tries)', () => {
    const { policy } = fixed(0.5, { latencyWeight: 0.5 });
    policy.observe(20);
    assert.equal(policy.latencyMs, 20);
    assert.equal(policy.backoffMs(1), 20, '0.5 × 20 ms × 2');
    policy.observe(40);
    assert.equal(policy.latencyMs, 30);
    assert.equal(policy.backoffMs(2), 60, '0.5 × 30 ms × 4');
    // A fast store keeps the floor: the unit never drops below minUnitMs.
    const fast = fixed(0.5, { minUnitMs: 2 }).policy;
    fast.observe(0.01);
    assert.equal(fast.backoffMs(1), 2);
    // Nonsense observations are ignored.
    policy.observe(Number.NaN);
    policy.observe(-5);
    assert.equal(policy.latencyMs, 30);
  });

  it('stops doubling after maxDoublings and never waits past maxWindowMs', () => {
    const { policy } = fixed(0.999, { maxDoublings: 3, maxWindowMs: 100_000 });
    policy.observe(10);
    assert.ok(Math.abs(policy.backoffMs(3) - 0.999 * 80) < 1e-9);
    assert.equal(policy.backoffMs(3), policy.backoffMs(40));
    const capped = fixed(1, { maxWindowMs: 500 }).policy;
    capped.observe(1000);
    assert.equal(capped.backoffMs(6), 500);
  });

  it('refuses options that make no sense', () => {
    for (const options of [
      { maxDecisions: 0 },
      { maxDecisions: 1.5 },
      { minUnitMs: 0 },
      { minUnitMs: 10, maxWindowMs: 5 },
      { latencyWeight: 0 },
      { latencyWeight: 2 },
      { maxDoublings: -1 },
    ]) {
      assert.throws(() => new RetryPolicy(options), TypeError, JSON.stringify(options));
    }
  });

  it('keeps one policy per store object', () => {
    const a = {};
    assert.equal(retryPolicyFor(a), retryPolicyFor(a));
    assert.notEqual(retryPolicyFor(a), retryPolicyFor({}));
  });
});

describe('retryOnConflict', () => {
  it('retries lost races with the policy’s backoff, refreshing first, and times every try', async () => {
    const { policy, clock, slept } = fixed(0.5, { latencyWeight: 1 });
    const log: string[] = [];
    let tries = 0;
    const result = await retryOnConflict(
      async () => {
        tries += 1;
        clock.now += 8; // every try takes 8 ms on the injected clock
        log.push(`try ${tries}`);
        if (tries < 4) throw conflict();
        return 'won';
      },
      async () => {
        log.push('refresh');
      },
      policy,
    );
    assert.equal(result, 'won');
    assert.deepEqual(log, ['try 1', 'refresh', 'try 2', 'refresh', 'try 3', 'refresh', 'try 4']);
    assert.equal(policy.latencyMs, 8);
    assert.deepEqual(slept, [8, 16, 32], '0.5 × 8 ms × 2^n');
  });

  it('reports the conflict after maxDecisions tries, and other errors at once', async () => {
    const { policy, slept } = fixed(0, { maxDecisions: 5 });
    let tries = 0;
    await assert.rejects(
      retryOnConflict(
        async () => {
          tries += 1;
          throw conflict();
        },
        async () => {},
        policy,
      ),
      (error) => isKeyledgerError(error, 'ERR_VERSION_CONFLICT'),
    );
    assert.equal(tries, 5);
    assert.equal(slept.length, 4);

    tries = 0;
    await assert.rejects(
      retryOnConflict(
        async () => {
          tries += 1;
          throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'no', {});
        },
        async () => {},
        policy,
      ),
      (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT'),
    );
    assert.equal(tries, 1);
  });
});
