import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { testEmbeddedEventStore, testEventStore } from './eventStore.contract.js';

const factory = async () => ({ store: new MemoryEventStore(), cleanup: async () => {} });

testEventStore('memory', factory);
testEmbeddedEventStore('memory', factory);

describe('MemoryEventStore', () => {
  it('keeps its own frozen copy of what was appended', async () => {
    const store = new MemoryEventStore();
    const data = { nested: { value: 1 } };
    await store.append('copy', [{ eventId: randomUUID(), type: 'Copied', data, metadata: {} }], 'no_stream');
    data.nested.value = 2;
    const [stored] = await store.readStream('copy');
    assert.deepEqual(stored?.data, { nested: { value: 1 } });
    assert.ok(Object.isFrozen(stored) && Object.isFrozen(stored?.data.nested));
    await store.close();
  });
});
