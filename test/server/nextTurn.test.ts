import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextTurn } from '../../src/server/nextTurn.js';

describe('nextTurn: the requests of one event-loop turn run together', () => {
  it('is one promise for every caller in a turn, resolved in its check phase, then a new one', async () => {
    const order: string[] = [];
    const first = nextTurn();
    const second = nextTurn();
    assert.equal(first, second, 'the callers of one turn share the wait');
    // An immediate queued after the wait's own fires after it; a microtask fires before it.
    setImmediate(() => order.push('later immediate'));
    queueMicrotask(() => order.push('microtask'));
    await first.then(() => order.push('turn'));
    assert.deepEqual(order, ['microtask', 'turn']);
    const next = nextTurn();
    assert.notEqual(next, first, 'a later turn waits anew');
    await next;
    assert.deepEqual(order, ['microtask', 'turn', 'later immediate']);
  });
});
