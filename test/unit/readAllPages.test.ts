import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyledgerError } from '../../src/domain/errors.js';
import { type EventSource, PAGE_SIZE, readAllPages } from '../../src/store/adapterSupport.js';
import type { RecordedEvent } from '../../src/store/eventStore.js';

/**
 * readAll's paging iterator over an in-memory EventSource that records what it is asked. The
 * contract suite (test/contract) holds both embedded stores to readAll's results; this holds the
 * iterator to how it reads: lazily, a page at a time, and never again once it has ended.
 */

function recorded(position: number): RecordedEvent {
  return {
    streamName: position % 2 === 0 ? 'kl-even' : 'other-odd',
    revision: 0n,
    position: BigInt(position),
    eventId: `e${position}`,
    type: 'T',
    data: {},
    metadata: {},
    recordedAt: new Date(0),
  };
}

interface Recorder extends EventSource {
  readonly calls: string[];
  events: RecordedEvent[];
  failOnRead: boolean;
}

function source(count: number): Recorder {
  const recorder: Recorder = {
    calls: [],
    events: Array.from({ length: count }, (_, i) => recorded(i + 1)),
    failOnRead: false,
    head() {
      recorder.calls.push('head');
      return recorder.events.at(-1)?.position ?? 0n;
    },
    readPage(after, upTo, prefix, limit) {
      recorder.calls.push(`read ${after} ${upTo} ${prefix ?? '*'} ${limit}`);
      if (recorder.failOnRead) throw new KeyledgerError('ERR_STORE_CLOSED', 'closed', {});
      return recorder.events
        .filter((e) => e.position > after && e.position <= upTo)
        .filter((e) => prefix === undefined || e.streamName.startsWith(prefix))
        .slice(0, limit);
    },
  };
  return recorder;
}

async function positions(iterable: AsyncIterable<RecordedEvent>): Promise<number[]> {
  const found: number[] = [];
  for await (const event of iterable) found.push(Number(event.position));
  return found;
}

describe('readAllPages', () => {
  it('reads nothing until the first next, then a page at a time up to the head it saw first', async () => {
    const s = source(PAGE_SIZE * 2 + 5);
    const iterable = readAllPages(s, {});
    assert.equal(s.calls.length, 0, 'nothing read yet');
    const iterator = iterable[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.position, 1n);
    assert.deepEqual(s.calls, ['head', `read 0 ${PAGE_SIZE * 2 + 5} * ${PAGE_SIZE}`]);
    // Events appended while reading lie above the head the iteration began with.
    s.events.push(recorded(PAGE_SIZE * 2 + 6));
    const rest = await positions({ [Symbol.asyncIterator]: () => iterator });
    assert.equal(rest.length, PAGE_SIZE * 2 + 4);
    assert.equal(rest.at(-1), PAGE_SIZE * 2 + 5);
    assert.equal(s.calls.filter((c) => c.startsWith('read')).length, 3, 'three pages, the last one short');
  });

  it('stops after maxCount, asking no more than it needs, and filters by prefix from after', async () => {
    const s = source(PAGE_SIZE * 3);
    assert.deepEqual(
      await positions(readAllPages(s, { maxCount: 3, after: 10n, streamPrefix: 'kl-' })),
      [12, 14, 16],
    );
    assert.deepEqual(s.calls, ['head', `read 10 ${PAGE_SIZE * 3} kl- 3`]);
    const exact = source(PAGE_SIZE);
    assert.equal((await positions(readAllPages(exact, { maxCount: PAGE_SIZE }))).length, PAGE_SIZE);
    assert.equal(
      exact.calls.filter((c) => c.startsWith('read')).length,
      1,
      'maxCount used up: no further page',
    );
  });

  it('an empty store or maxCount 0 reads no page', async () => {
    const empty = source(0);
    assert.deepEqual(await positions(readAllPages(empty, {})), []);
    assert.deepEqual(empty.calls, ['head']);
    const none = source(5);
    assert.deepEqual(await positions(readAllPages(none, { maxCount: 0 })), []);
    assert.deepEqual(none.calls, ['head']);
  });

  it('a bad maxCount rejects the first next with ERR_INVALID_ARGUMENT, before reading anything', async () => {
    const s = source(5);
    const iterator = readAllPages(s, { maxCount: -1 })[Symbol.asyncIterator]();
    await assert.rejects(iterator.next(), { code: 'ERR_INVALID_ARGUMENT' });
    assert.equal(s.calls.length, 0, 'nothing read');
    assert.deepEqual(await iterator.next(), { value: undefined, done: true }, 'ended by the error');
  });

  it('a failing read rejects that next and ends the iteration', async () => {
    const s = source(PAGE_SIZE + 1);
    const iterator = readAllPages(s, {})[Symbol.asyncIterator]();
    for (let i = 0; i < PAGE_SIZE; i++) await iterator.next();
    s.failOnRead = true;
    await assert.rejects(iterator.next(), { code: 'ERR_STORE_CLOSED' });
    s.failOnRead = false;
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
    assert.equal(s.calls.filter((c) => c.startsWith('read')).length, 2, 'no read after the failure');
  });

  it('breaking out of for await ends it: the rest of the page is dropped and nothing more is read', async () => {
    const s = source(PAGE_SIZE * 2);
    const iterable = readAllPages(s, {});
    for await (const event of iterable) if (event.position === 3n) break;
    assert.deepEqual(await iterable[Symbol.asyncIterator]().next(), { value: undefined, done: true });
    assert.equal(s.calls.filter((c) => c.startsWith('read')).length, 1);
  });
});
