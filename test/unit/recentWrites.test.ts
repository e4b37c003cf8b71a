import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentWrites } from '../../src/store/esdb/recentWrites.js';

describe('RecentWrites (when an esdb append at an exact revision looks first)', () => {
  it('looks for a batch sharing an id with one sent before to the same stream, not otherwise', () => {
    const recent = new RecentWrites();
    assert.equal(recent.needsLook('s', ['a']), false);
    recent.noteAttempt('s', ['a', 'b']);
    assert.equal(recent.needsLook('s', ['a', 'b']), true, 'a retry');
    assert.equal(recent.needsLook('s', ['a', 'b', 'c']), true, 'a retry that grew');
    assert.equal(recent.needsLook('s', ['c']), false, 'new events');
    assert.equal(recent.needsLook('other', ['a']), false, 'another stream');
  });

  it('looks at a stream it deleted until an append succeeds on it', () => {
    const recent = new RecentWrites();
    recent.noteDeleted('s');
    assert.equal(recent.needsLook('s', ['x']), true);
    recent.noteWritten('s');
    assert.equal(recent.needsLook('s', ['x']), false);
  });

  it('stays bounded: the oldest ids of a stream, and the least recently written streams, are forgotten', () => {
    const recent = new RecentWrites();
    recent.noteAttempt(
      's',
      Array.from({ length: 300 }, (_, i) => `id${i}`),
    );
    assert.equal(recent.needsLook('s', ['id0']), false);
    assert.equal(recent.needsLook('s', ['id43']), false);
    assert.equal(recent.needsLook('s', ['id44']), true);
    assert.equal(recent.needsLook('s', ['id299']), true);

    recent.noteAttempt('first', ['f']);
    for (let i = 0; i < 1024; i++) recent.noteAttempt(`stream-${i}`, ['x']);
    assert.equal(recent.needsLook('first', ['f']), false);
    assert.equal(recent.needsLook('stream-1023', ['x']), true);
  });
});
