import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BYTES_OPERATIONS,
  EVENTS_OPERATIONS,
  LOCAL_ONLY_OPERATIONS,
} from '../../src/operations/keyledgerApi.js';
import { OPERATIONS } from '../../src/operations/operations.js';

describe('KeyledgerApi operation names', () => {
  it('the bytes and events names are exactly the table’s operations of those kinds', () => {
    const ofKind = (kind: string) =>
      OPERATIONS.filter((o) => o.kind === kind)
        .map((o) => o.name)
        .sort();
    assert.deepEqual([...BYTES_OPERATIONS].sort(), ofKind('bytes'));
    assert.deepEqual([...EVENTS_OPERATIONS].sort(), ofKind('events'));
  });

  it('every local-only operation is in the table and unary', () => {
    for (const name of LOCAL_ONLY_OPERATIONS) {
      assert.equal(OPERATIONS.find((o) => o.name === name)?.kind, 'unary', name);
    }
  });
});
