import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeyledgerError, KeyledgerError } from '../../src/domain/errors.js';
import {
  appendEvents,
  decideAndAppend,
  expectedAfter,
  type Journal,
} from '../../src/journal/decideAndAppend.js';
import { deterministicEventId, type OperationContext } from '../../src/journal/eventFactory.js';
import { retryPolicyFor } from '../../src/journal/retryPolicy.js';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';

const CONTEXT: OperationContext = { actor: 'tester', reason: null, correlationId: 'c-1', causationId: null };
const AT = new Date('2026-01-01T00:00:00.000Z');

interface Counted {
  readonly count: number;
}

function journalOf(store: MemoryEventStore, waited: bigint[] = []): Journal {
  return {
    store,
    now: () => AT,
    view: {
      waitForPosition: async (position) => {
        waited.push(position);
      },
    },
  };
}

/** A plan over a counter stream: each decision appends one `Counted` event numbered after the fold. */
function counterPlan(store: MemoryEventStore, stream: string, log: string[]) {
  return {
    stream,
    context: CONTEXT,
    load: async (afterConflict: boolean) => {
      log.push(afterConflict ? 'reload' : 'load');
      const events = await store.readStream(stream);
      return { state: events.length, expected: expectedAfter(events.at(-1)?.revision ?? null) };
    },
    decide: (count: number) => {
      log.push(`decide ${count}`);
      return [{ type: 'Counted', data: { count } satisfies Counted }];
    },
  };
}

function counts(events: readonly RecordedEvent[]): unknown[] {
  return events.map((e) => e.data.count);
}

describe('decideAndAppend (the one write path)', () => {
  it('appends what it decided at the revision it loaded, with the factory metadata, and waits for the view', async () => {
    const store = new MemoryEventStore();
    const waited: bigint[] = [];
    const log: string[] = [];
    const written = await decideAndAppend(journalOf(store, waited), counterPlan(store, 's', log));
    const stored = await store.readStream('s');
    assert.deepEqual(counts(stored), [0]);
    assert.equal(written.position, stored[0]?.position);
    assert.deepEqual(waited, [written.position]);
    assert.deepEqual(log, ['load', 'decide 0']);
    assert.equal(stored[0]?.eventId, deterministicEventId('c-1', 's', 'no_stream', '0'));
    assert.deepEqual(stored[0]?.metadata, {
      schemaVersion: 1,
      actor: 'tester',
      reason: null,
      correlationId: 'c-1',
      causationId: null,
      occurredAt: AT.toISOString(),
    });
  });

  it('loses a race: loads again, decides again, appends at the new revision', async () => {
    const store = new MemoryEventStore();
    const log: string[] = [];
    let raced = false;
    const plan = counterPlan(store, 's', log);
    await decideAndAppend(journalOf(store), {
      ...plan,
      beforeAppend: async () => {
        if (raced) return;
        raced = true;
        // Another writer gets there between this decision and its append.
        await decideAndAppend(journalOf(store), {
          ...counterPlan(store, 's', []),
          context: { ...CONTEXT, correlationId: 'other' },
        });
      },
    });
    assert.deepEqual(counts(await store.readStream('s')), [0, 1]);
    assert.deepEqual(log, ['load', 'decide 0', 'reload', 'decide 1']);
  });

  it('uses the caller’s first state without loading, and gives up after the policy’s maxDecisions lost races', async () => {
    const store = new MemoryEventStore();
    const log: string[] = [];
    const plan = counterPlan(store, 's', log);
    await store.append(
      's',
      [{ eventId: crypto.randomUUID(), type: 'Counted', data: { count: 0 }, metadata: {} }],
      'any',
    );
    // A stale first state (an empty stream) that never catches up: every try conflicts.
    await assert.rejects(
      decideAndAppend(journalOf(store), {
        ...plan,
        initial: { state: 0, expected: 'no_stream' },
        load: async () => {
          log.push('reload');
          return { state: 0, expected: 'no_stream' };
        },
      }),
      (error) => isKeyledgerError(error, 'ERR_VERSION_CONFLICT'),
    );
    assert.equal(log.filter((l) => l === 'reload').length, retryPolicyFor(store).maxDecisions - 1);
    assert.equal(log[0], 'decide 0', 'the first try decided on the initial state');
    assert.equal((await store.readStream('s')).length, 1);
  });

  it('writes nothing for an empty decision, a refused command or a failing beforeAppend', async () => {
    const store = new MemoryEventStore();
    const waited: bigint[] = [];
    const plan = counterPlan(store, 's', []);
    const none = await decideAndAppend(journalOf(store, waited), { ...plan, decide: () => [] });
    assert.deepEqual([none.position, none.appended, none.events], [null, null, []]);
    await assert.rejects(
      decideAndAppend(journalOf(store, waited), {
        ...plan,
        decide: () => {
          throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'refused', {});
        },
      }),
      (error) => isKeyledgerError(error, 'ERR_INVALID_ARGUMENT'),
    );
    await assert.rejects(
      decideAndAppend(journalOf(store, waited), {
        ...plan,
        beforeAppend: async () => {
          throw new KeyledgerError('ERR_PROVIDER_INVALID_ANSWER', 'no key bytes', {});
        },
      }),
      (error) => isKeyledgerError(error, 'ERR_PROVIDER_INVALID_ANSWER'),
    );
    assert.deepEqual(await store.readStream('s'), []);
    assert.deepEqual(waited, []);
  });

  it('takes event ids, an append of its own, and no wait when asked', async () => {
    const store = new MemoryEventStore();
    const waited: bigint[] = [];
    const appended: string[] = [];
    const written = await decideAndAppend(journalOf(store, waited), {
      ...counterPlan(store, 's', []),
      eventIds: () => ['00000000-0000-8000-8000-000000000001'],
      append: async (events, expected) => {
        appended.push(String(expected));
        return store.append('s', events, expected);
      },
      waitForView: false,
    });
    assert.deepEqual(appended, ['no_stream']);
    assert.equal((await store.readStream('s'))[0]?.eventId, '00000000-0000-8000-8000-000000000001');
    assert.notEqual(written.position, null);
    assert.deepEqual(waited, []);
  });

  it('appendEvents appends at `any` and waits for the view', async () => {
    const store = new MemoryEventStore();
    const waited: bigint[] = [];
    await store.append(
      'ops',
      [{ eventId: crypto.randomUUID(), type: 'Counted', data: { count: 0 }, metadata: {} }],
      'any',
    );
    const written = await appendEvents(journalOf(store, waited), {
      stream: 'ops',
      context: CONTEXT,
      events: [{ type: 'Counted', data: { count: 1 } }],
    });
    assert.deepEqual(counts(await store.readStream('ops')), [0, 1]);
    assert.deepEqual(waited, [written.position]);
  });
});
