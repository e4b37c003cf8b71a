import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PersistentOrderedMap } from '../../src/domain/persistentOrderedMap.js';

/**
 * PersistentOrderedMap against a Map copied per change (the model): random `with` calls on random
 * earlier versions (so the order log forks, and the same key is appended twice from one version),
 * past one and two levels of the trie; every version, old ones included, must still read as its
 * model at the end.
 */
type Op = { version: number; key: number; value: number };

function assertSame(
  map: PersistentOrderedMap<string, number>,
  model: ReadonlyMap<string, number>,
  where: string,
) {
  assert.equal(map.size, model.size, where);
  assert.deepStrictEqual([...map], [...model], where);
  assert.deepStrictEqual([...map.keys()], [...model.keys()], where);
  assert.deepStrictEqual([...map.values()], [...model.values()], where);
  for (const [k, v] of model) {
    assert.equal(map.get(k), v, where);
    assert.ok(map.has(k), where);
  }
  const seen: [string, number][] = [];
  map.forEach((v, k) => {
    seen.push([k, v]);
  });
  assert.deepStrictEqual(seen, [...model], where);
}

function run(ops: readonly Op[], keys: number, start: readonly [string, number][]) {
  const versions = [PersistentOrderedMap.from<string, number>(start)];
  const models: ReadonlyMap<string, number>[] = [new Map(start)];
  for (const op of ops) {
    const i = op.version % versions.length;
    const key = `k${op.key % keys}`;
    versions.push((versions[i] as PersistentOrderedMap<string, number>).with(key, op.value));
    models.push(new Map(models[i]).set(key, op.value));
  }
  for (const [i, version] of versions.entries()) {
    assertSame(version, models[i] as ReadonlyMap<string, number>, `version ${i}`);
    assert.equal(version.get('absent'), undefined);
    assert.ok(!version.has('absent'));
  }
}

describe('PersistentOrderedMap', () => {
  it('every version reads as a Map copied per change, with forks, few keys', () => {
    const op = fc.record({ version: fc.nat(), key: fc.nat(), value: fc.integer() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 40 }), (ops, keys) =>
        run(ops, keys, []),
      ),
      { numRuns: 300 },
    );
  });

  it('every version reads as its model past two trie levels (over 1024 entries)', () => {
    // Mostly appends to the latest version, some updates and forks from older ones.
    const op = fc.oneof(
      { weight: 8, arbitrary: fc.record({ version: fc.constant(-1), key: fc.nat(), value: fc.integer() }) },
      { weight: 1, arbitrary: fc.record({ version: fc.nat(), key: fc.nat(), value: fc.integer() }) },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 200, maxLength: 400 }), (ops) => {
        const start: [string, number][] = Array.from({ length: 1000 }, (_, i) => [`k${i}`, i]);
        // version -1: the latest one (index resolved as ops are applied).
        const resolved = ops.map((o, n) => (o.version === -1 ? { ...o, version: n } : o));
        run(resolved, 1400, start);
      }),
      { numRuns: 4, endOnFailure: true },
    );
  });

  it('from() keeps the first position of a repeated key with its last value, and returns a persistent map as is', () => {
    const map = PersistentOrderedMap.from([
      ['a', 1],
      ['b', 2],
      ['a', 3],
    ]);
    assert.deepStrictEqual(
      [...map],
      [
        ['a', 3],
        ['b', 2],
      ],
    );
    assert.equal(PersistentOrderedMap.from(map), map);
    assert.equal(PersistentOrderedMap.empty().size, 0);
    assert.deepStrictEqual([...PersistentOrderedMap.empty()], []);
  });
});
