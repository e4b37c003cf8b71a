import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LazyKeyIndex } from '../../src/audit/lazyKeyIndex.js';
import type { KeyId, ScopeKey } from '../../src/domain/index.js';

describe('LazyKeyIndex (a row-form historic snapshot’s key index, searched in the sorted header)', () => {
  const scopes = ['c:a', 'c:b', 'c:c'] as ScopeKey[];
  const pairs: [string, number][] = [
    ['k9', 0],
    ['k1', 1],
    ['k5', 2],
    ['k3', 0],
    ['k7', 1],
  ];
  const sorted = [...pairs].sort((x, y) => (x[0] < y[0] ? -1 : 1));
  const make = () =>
    new LazyKeyIndex(
      sorted.map(([id]) => id),
      sorted.map(([, owner]) => owner),
      scopes,
    );

  it('answers every header key, none other, and what the replay set over it', () => {
    const index = make();
    for (const [id, owner] of pairs) assert.equal(index.get(id as KeyId), scopes[owner]);
    for (const id of ['k0', 'k4', 'k99', '']) assert.equal(index.get(id as KeyId), undefined);
    assert.ok(index.has('k5' as KeyId));
    assert.ok(!index.has('k6' as KeyId));
    index.set('k6' as KeyId, 'c:c' as ScopeKey);
    index.set('k9' as KeyId, 'c:b' as ScopeKey);
    assert.equal(index.get('k6' as KeyId), 'c:c');
    assert.equal(index.get('k9' as KeyId), 'c:b');
    assert.equal(index.size, 6);
    assert.deepEqual(
      new Map(index),
      new Map([
        ['k6', 'c:c'],
        ['k9', 'c:b'],
        ['k1', 'c:b'],
        ['k3', 'c:a'],
        ['k5', 'c:c'],
        ['k7', 'c:b'],
      ]),
    );
    assert.equal(index.delete('k1' as KeyId), true);
    assert.equal(index.get('k1' as KeyId), undefined);
  });
});
