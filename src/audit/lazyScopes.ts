import { emptyKeymetaView } from '../../projections/keymeta.js';
import { KeymetaRowDecoder } from '../../projections/keymetaRows.js';
import { KeyledgerError } from '../domain/errors.js';
import type { ScopeKey } from '../domain/identities.js';
import type { ScopeState } from '../domain/scopeState.js';

/** Thrown when a row does not decode (loadAsOfRows' caller then rejects the snapshot). */
export class UndecodableRow extends Error {}

/**
 * The scopes of a view loaded from a row-form historic snapshot (asOfRows.ts): a Map whose entries
 * are rows (text) until read. Building every scope of a large view (a Map of keys and an object per
 * key, 163k keys at 1M events) costs more than the rest of an as-of query, and a query or its
 * caller usually reads few of them: a scope is decoded the first time `get` reads it (the replay
 * does for every scope it changes), and every one when the map is iterated. It holds the same
 * entries as the map a full decode would build, in the header's order (scopes the replay added
 * after them).
 *
 * A row that does not decode throws UndecodableRow; once the rows matched their sealed digest this
 * cannot happen (only the sealer makes rows that match), so after that check it is ERR_INTERNAL.
 */
export class LazyScopes extends Map<ScopeKey, ScopeState> {
  /** Rows not decoded yet, in the header's order (the caller may still be adding to it). */
  readonly #rows: Map<ScopeKey, string>;
  /** The header's order of every scope, kept until everything is decoded. */
  #order: ScopeKey[] | null = null;
  #checked = false;
  readonly #scratch = emptyKeymetaView();
  readonly #decoder = new KeymetaRowDecoder(this.#scratch);

  constructor(rows: Map<ScopeKey, string>) {
    super();
    this.#rows = rows;
  }

  /** The rows matched their digest: a row that does not decode is now a fault of the sealer. */
  markChecked(): void {
    this.#checked = true;
  }

  override get(key: ScopeKey): ScopeState | undefined {
    const known = super.get(key);
    if (known !== undefined) return known;
    const row = this.#rows.get(key);
    return row === undefined ? undefined : this.#decode(key, row);
  }

  override has(key: ScopeKey): boolean {
    return super.has(key) || this.#rows.has(key);
  }

  override get size(): number {
    return super.size + this.#rows.size;
  }

  override set(key: ScopeKey, value: ScopeState): this {
    this.#keepOrder();
    this.#rows.delete(key);
    return super.set(key, value);
  }

  override delete(key: ScopeKey): boolean {
    const row = this.#rows.delete(key);
    return super.delete(key) || row;
  }

  override clear(): void {
    this.#rows.clear();
    this.#order = null;
    super.clear();
  }

  override forEach(
    each: (value: ScopeState, key: ScopeKey, map: Map<ScopeKey, ScopeState>) => void,
    self?: unknown,
  ): void {
    this.#decodeAll();
    super.forEach(each, self);
  }

  override entries(): MapIterator<[ScopeKey, ScopeState]> {
    this.#decodeAll();
    return super.entries();
  }

  override keys(): MapIterator<ScopeKey> {
    this.#decodeAll();
    return super.keys();
  }

  override values(): MapIterator<ScopeState> {
    this.#decodeAll();
    return super.values();
  }

  override [Symbol.iterator](): MapIterator<[ScopeKey, ScopeState]> {
    return this.entries();
  }

  /** Before the first decoded entry goes in: the header's order, to restore at #decodeAll. */
  #keepOrder(): void {
    if (this.#order === null && super.size === 0) this.#order = [...this.#rows.keys()];
  }

  #decode(key: ScopeKey, row: string): ScopeState {
    const scratch = this.#scratch;
    if (!this.#decoder.add(key, row)) {
      if (this.#checked)
        throw new KeyledgerError(
          'ERR_INTERNAL',
          'a historic snapshot row that matched its digest does not decode',
          {},
        );
      throw new UndecodableRow(key);
    }
    const state = scratch.scopes.get(key) as ScopeState;
    scratch.scopes.clear();
    scratch.keyIndex.clear();
    scratch.materials.clear();
    this.set(key, state);
    return state;
  }

  /** Decodes every row left, then puts the entries in the header's order (then the added ones). */
  #decodeAll(): void {
    if (this.#rows.size === 0 && this.#order === null) return;
    const order = this.#order ?? [...this.#rows.keys()];
    for (const [key, row] of [...this.#rows]) this.#decode(key, row);
    const decoded = new Map(super.entries());
    super.clear();
    for (const key of order) {
      const state = decoded.get(key);
      if (state === undefined) continue;
      super.set(key, state);
      decoded.delete(key);
    }
    for (const [key, state] of decoded) super.set(key, state);
    this.#order = null;
  }
}
