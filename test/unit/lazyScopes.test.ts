import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyKeymetaView } from '../../projections/keymeta.js';
import { KeymetaRowDecoder } from '../../projections/keymetaRows.js';
import { LazyScopes, UndecodableRow } from '../../src/audit/lazyScopes.js';
import type { ScopeKey, ScopeState } from '../../src/domain/index.js';
import { plainScopes } from '../helpers/keymetaViews.js';

/** A keymeta row (projections/keymetaRows.ts) of scope `c:n<i>` with `keys` keys. */
function row(i: number, keys: number): [ScopeKey, string] {
  const ks = Array.from({ length: keys }, (_, k) => [
    `key-${i}-${k}`,
    `{"KeyAlias":"a${k}"}`,
    `hash-${i}-${k}`,
    'checksum',
    '0123456789abcdef',
    k === keys - 1 ? 'ACTIVE' : 'INACTIVE',
    '2026-01-01T00:00:00.000Z',
    '2026-01-02T00:00:00.000Z',
    '2026-01-02T00:00:00.000Z',
    null,
    null,
    null,
    null,
  ]);
  const active = keys === 0 ? null : `key-${i}-${keys - 1}`;
  return [`c:n${i}` as ScopeKey, JSON.stringify(['c', `n${i}`, 'ACTIVE', active, null, String(i), ks])];
}

function rows(count: number): Map<ScopeKey, string> {
  return new Map(Array.from({ length: count }, (_, i) => row(i, (i % 3) + 1)));
}

/** The map a full decode builds (KeymetaRowDecoder over every row, in order). */
function decodedAll(source: Map<ScopeKey, string>): Map<ScopeKey, ScopeState> {
  const view = emptyKeymetaView();
  const decoder = new KeymetaRowDecoder(view);
  for (const [key, value] of source) assert.ok(decoder.add(key, value));
  return view.scopes;
}

describe('LazyScopes (a row-form historic snapshot’s scopes, decoded when read)', () => {
  it('holds what a full decode holds, in the same order, whatever was read first', () => {
    const source = rows(7);
    const full = decodedAll(source);
    const lazy = new LazyScopes(new Map(source));
    assert.equal(lazy.size, 7);
    assert.ok(lazy.has('c:n3' as ScopeKey));
    assert.ok(!lazy.has('c:none' as ScopeKey));
    assert.equal(lazy.get('c:none' as ScopeKey), undefined);
    assert.deepEqual(
      plainScopes(new Map([['c:n5' as ScopeKey, lazy.get('c:n5' as ScopeKey) as ScopeState]])),
      plainScopes(new Map([['c:n5' as ScopeKey, full.get('c:n5' as ScopeKey) as ScopeState]])),
    );
    // A read decodes once: the same object afterwards.
    assert.equal(lazy.get('c:n5' as ScopeKey), lazy.get('c:n5' as ScopeKey));
    assert.equal(lazy.size, 7);
    assert.deepEqual(plainScopes(lazy), plainScopes(full));
    assert.deepEqual([...lazy.keys()], [...full.keys()]);
  });

  it('set replaces in place (order kept), adds at the end, delete removes decoded or not', () => {
    const source = rows(5);
    const full = decodedAll(source);
    const lazy = new LazyScopes(new Map(source));
    const replacement = { ...(full.get('c:n0' as ScopeKey) as ScopeState), revision: 99n };
    lazy.set('c:n0' as ScopeKey, replacement);
    full.set('c:n0' as ScopeKey, replacement);
    const [extraKey, extraRow] = row(9, 2);
    const extra = decodedAll(new Map([[extraKey, extraRow]])).get(extraKey) as ScopeState;
    lazy.set(extraKey, extra);
    full.set(extraKey, extra);
    assert.equal(lazy.delete('c:n2' as ScopeKey), true);
    full.delete('c:n2' as ScopeKey);
    lazy.get('c:n3' as ScopeKey);
    assert.equal(lazy.delete('c:n3' as ScopeKey), true);
    full.delete('c:n3' as ScopeKey);
    assert.equal(lazy.delete('c:n3' as ScopeKey), false);
    assert.equal(lazy.size, full.size);
    assert.deepEqual(plainScopes(lazy), plainScopes(full));
    let n = 0;
    lazy.forEach(() => {
      n++;
    });
    assert.equal(n, full.size);
    assert.deepEqual([...lazy.values()].length, full.size);
  });

  it('a row that does not decode: UndecodableRow before the digest check, ERR_INTERNAL after', () => {
    const source = rows(2);
    source.set('c:bad' as ScopeKey, '["c","other",null]');
    const lazy = new LazyScopes(new Map(source));
    assert.throws(() => lazy.get('c:bad' as ScopeKey), UndecodableRow);
    const checked = new LazyScopes(new Map(source));
    checked.markChecked();
    assert.throws(() => [...checked], { code: 'ERR_INTERNAL' });
  });
});
