import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScope } from '../../src/domain/identities.js';

describe('smoke', () => {
  it('parses a scope', () => {
    assert.equal(parseScope('Kg==:t1').namespace, 't1');
  });
});
