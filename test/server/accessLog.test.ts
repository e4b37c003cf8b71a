import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { type AccessLogEntry, batchedJsonLines } from '../../src/server/accessLog.js';

const entry = (requestId: string): AccessLogEntry => ({
  time: '2026-12-03T00:00:00.000Z',
  requestId,
  method: 'POST',
  path: '/v1/encrypt',
  principal: 'app',
  operation: 'encrypt',
  custodian: null,
  scope: null,
  status: 200,
  code: null,
  durationMs: 1.5,
});

describe('the access log: JSON lines batched per event-loop turn', () => {
  it('writes the lines of one turn as one write, after the turn, one line per entry in order', async () => {
    const writes: string[] = [];
    const log = batchedJsonLines((text) => writes.push(text));
    log(entry('a'));
    log(entry('b'));
    log(entry('c'));
    assert.equal(writes.length, 0, 'nothing is written during the turn');
    await turn();
    assert.equal(writes.length, 1);
    const lines = (writes[0] ?? '').split('\n');
    assert.equal(lines.pop(), '', 'every line ends with a newline');
    assert.deepEqual(
      lines.map((line) => JSON.parse(line) as Record<string, unknown>),
      ['a', 'b', 'c'].map((id) => ({ level: 'info', msg: 'request', ...entry(id) })),
    );
  });

  it('starts a new batch in the next turn and writes nothing for a turn without entries', async () => {
    const writes: string[] = [];
    const log = batchedJsonLines((text) => writes.push(text));
    log(entry('a'));
    await turn();
    await turn();
    log(entry('b'));
    await turn();
    assert.deepEqual(
      writes.map((text) => (JSON.parse(text) as { requestId: string }).requestId),
      ['a', 'b'],
    );
  });
});
