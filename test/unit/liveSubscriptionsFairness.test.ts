import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';

/**
 * The embedded stores deliver a notified read in a microtask, up to a budget of reads without an
 * event-loop turn (src/store/adapterSupport.ts, LiveSubscriptions); past it, reads wait in
 * macrotasks. A caller that waits only in microtasks (as the invalidation bench does, and any
 * in-process user whose loop does no I/O) must not leave one subscriber in the macrotask queue
 * while the others go on reading in microtasks.
 */
describe('LiveSubscriptions past the microtask budget', () => {
  it('keeps every subscriber up with the others (no subscriber left hundreds of events behind)', async () => {
    const store = new MemoryEventStore();
    const seen = [0n, 0n, 0n];
    const waiting: { position: bigint; resolve: () => void }[] = [];
    /** Resolves once subscriber 1 (the one the loop waits for, like a writer's projector) has `position`. */
    const applied = (position: bigint) =>
      seen[1] !== undefined && seen[1] >= position
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiting.push({ position, resolve }));
    let worstLag = 0n;
    const subscriptions = seen.map((_, i) =>
      store.subscribe({}).subscribe((event) => {
        seen[i] = event.position;
        if (i === 1) {
          // Subscribers 0 (subscribed first, like the bench's probe) and 2 are nobody's wait.
          for (const other of [seen[0] ?? 0n, seen[2] ?? 0n]) {
            if (event.position - other > worstLag) worstLag = event.position - other;
          }
          for (const w of waiting.splice(0)) {
            if (w.position <= event.position) w.resolve();
            else waiting.push(w);
          }
        }
      }),
    );
    try {
      // The first read of a subscription is a catch-up, on a macrotask.
      await new Promise((resolve) => setImmediate(resolve));
      const append = (type: string) =>
        store.append('s', [{ eventId: randomUUID(), type, data: {}, metadata: {} }], 'any');
      // Two appends per step, the second once subscriber 1 has the first (a rotation: scope event,
      // then its read-your-writes wait), no event-loop turn in between: 3 subscribers × 4000
      // events is well past the budget of 4096 reads.
      for (let i = 0; i < 2000; i++) {
        const first = await append('First');
        await applied(first.position);
        const second = await append('Second');
        await applied(second.position);
      }
      // No other subscriber was behind by more than the step being delivered (its two events).
      assert.ok(worstLag <= 2n, `a subscriber fell ${worstLag} events behind`);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(seen, [4000n, 4000n, 4000n]);
    } finally {
      for (const s of subscriptions) s.unsubscribe();
      await store.close();
    }
  });
});
