/**
 * An immutable map in insertion order whose versions share structure: `with` returns a new version
 * in O(log32 n) time and garbage (a path of at most a few 32-slot arrays), where copying a Map is
 * O(n). A scope's keys live in one (`ScopeState.keys`): every rotation changes two keys of a scope
 * that may hold hundreds, in each ledger of the process, and a copy per change made the garbage,
 * and so the scavenges falling between an append and its apply, grow with the scope's history.
 *
 * Entries are never removed (a scope never forgets a key), which allows the layout:
 * - the order is an append-only log (`ids` and each id's index) shared by the versions of one
 *   lineage; a version sees its first `size` entries of it, which nobody changes once written.
 *   A version that appends where a later version of the same lineage already appended something
 *   else copies its prefix (a fork: rare; the same key appended from the same version, as when the
 *   decider and the projector fold the same event onto one state, reuses the entry);
 * - the values are a persistent vector by index (a 32-way trie), changed by path copying.
 */

const BITS = 5;
const WIDTH = 1 << BITS;
const MASK = WIDTH - 1;

/** The order of a lineage of versions: append-only; each version reads a prefix. */
interface OrderLog<K> {
  readonly ids: K[];
  readonly index: Map<K, number>;
}

type Trie = unknown[];

export class PersistentOrderedMap<K, V> implements ReadonlyMap<K, V> {
  readonly #log: OrderLog<K>;
  readonly #root: Trie;
  /** BITS × (depth − 1): the bit offset of the root's digit. */
  readonly #shift: number;
  readonly #size: number;

  private constructor(log: OrderLog<K>, root: Trie, shift: number, size: number) {
    this.#log = log;
    this.#root = root;
    this.#shift = shift;
    this.#size = size;
  }

  static empty<K, V>(): PersistentOrderedMap<K, V> {
    return new PersistentOrderedMap<K, V>({ ids: [], index: new Map() }, [], 0, 0);
  }

  /** A map of `entries` in their order (a later duplicate key replaces the value in place). */
  static from<K, V>(entries: Iterable<readonly [K, V]>): PersistentOrderedMap<K, V> {
    if (entries instanceof PersistentOrderedMap) return entries as PersistentOrderedMap<K, V>;
    const ids: K[] = [];
    const index = new Map<K, number>();
    const values: V[] = [];
    for (const [k, v] of entries) {
      const i = index.get(k);
      if (i !== undefined) {
        values[i] = v;
        continue;
      }
      index.set(k, ids.length);
      ids.push(k);
      values.push(v);
    }
    // Built bottom-up: leaves of WIDTH values, then levels of WIDTH children until one root.
    let level: Trie[] = [];
    for (let i = 0; i < values.length; i += WIDTH) level.push(values.slice(i, i + WIDTH));
    let shift = 0;
    while (level.length > 1) {
      const up: Trie[] = [];
      for (let i = 0; i < level.length; i += WIDTH) up.push(level.slice(i, i + WIDTH));
      level = up;
      shift += BITS;
    }
    return new PersistentOrderedMap<K, V>({ ids, index }, level[0] ?? [], shift, ids.length);
  }

  get size(): number {
    return this.#size;
  }

  get(key: K): V | undefined {
    const i = this.#log.index.get(key);
    return i === undefined || i >= this.#size ? undefined : this.#at(i);
  }

  has(key: K): boolean {
    const i = this.#log.index.get(key);
    return i !== undefined && i < this.#size;
  }

  /** This map with `key` set to `value`: in its place if present, else last. This map is unchanged. */
  with(key: K, value: V): PersistentOrderedMap<K, V> {
    const log = this.#log;
    const size = this.#size;
    const i = log.index.get(key);
    if (i !== undefined && i < size) {
      return new PersistentOrderedMap(log, assoc(this.#root, this.#shift, i, value), this.#shift, size);
    }
    let next = log;
    if (log.ids.length === size) {
      log.ids.push(key);
      log.index.set(key, size);
    } else if (log.ids[size] !== key) {
      // A later version of this lineage appended another key here: this one forks the order.
      const ids = log.ids.slice(0, size);
      const index = new Map<K, number>();
      for (const [j, id] of ids.entries()) index.set(id, j);
      ids.push(key);
      index.set(key, size);
      next = { ids, index };
    }
    let root = this.#root;
    let shift = this.#shift;
    if (size === 1 << (shift + BITS)) {
      // The trie is full: one level more, the old root its first child.
      root = [root];
      shift += BITS;
    }
    return new PersistentOrderedMap(next, assoc(root, shift, size, value), shift, size + 1);
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this) callback.call(thisArg, v, k, this);
  }

  *entries(): MapIterator<[K, V]> {
    const ids = this.#log.ids;
    for (let i = 0; i < this.#size; i++) yield [ids[i] as K, this.#at(i)];
  }

  *keys(): MapIterator<K> {
    const ids = this.#log.ids;
    for (let i = 0; i < this.#size; i++) yield ids[i] as K;
  }

  *values(): MapIterator<V> {
    for (let i = 0; i < this.#size; i++) yield this.#at(i);
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'PersistentOrderedMap';
  }

  #at(i: number): V {
    let node = this.#root;
    for (let s = this.#shift; s > 0; s -= BITS) node = node[(i >>> s) & MASK] as Trie;
    return node[i & MASK] as V;
  }
}

/** A copy of the path to slot `i` with `value` there; nodes off the path are shared. */
function assoc(node: Trie | undefined, shift: number, i: number, value: unknown): Trie {
  const copy = node === undefined ? [] : node.slice();
  if (shift === 0) {
    copy[i & MASK] = value;
  } else {
    const j = (i >>> shift) & MASK;
    copy[j] = assoc(copy[j] as Trie | undefined, shift - BITS, i, value);
  }
  return copy;
}
