import type { KeymetaView } from '../../projections/keymeta.js';
import type { ScopeKey, ScopeState } from '../../src/domain/index.js';

/**
 * A view's scopes as plain data to compare with deepStrictEqual: each scope's keys as its entries
 * in order. The folds keep a scope's keys in different map types (evolveScope a
 * PersistentOrderedMap whose versions share structure, the replay and a restored snapshot a
 * Map), and deepStrictEqual compares prototypes: two views are the same when these are equal.
 */
export function plainScopes(scopes: ReadonlyMap<ScopeKey, ScopeState> | undefined): unknown {
  if (scopes === undefined) return undefined;
  return [...scopes].map(([sk, state]) => [sk, { ...state, keys: [...state.keys.entries()] }]);
}

/** The whole view as plain data, every object copied (what a view held at the time of the call). */
export function plainView(view: KeymetaView): unknown {
  return structuredClone({
    position: view.position,
    scopes: plainScopes(view.scopes),
    keyIndex: [...view.keyIndex],
    materials: [...view.materials],
  });
}
