import type { KeyId, ScopeKey } from '../domain/identities.js';

/**
 * The key index of a view loaded from a row-form historic snapshot (asOfRows.ts): which scope each
 * key belongs to, answered by a binary search in the header's sorted key ids instead of a Map of
 * every key (163k entries at 1M events cost ~90 ms to build, most of which a query never reads:
 * the replay looks up only the keys its material events name). Entries the replay sets are kept
 * in the Map itself and take precedence; iterating materialises every entry.
 */
export class LazyKeyIndex extends Map<KeyId, ScopeKey> {
  /** Key ids, sorted by code unit (as Array.prototype.sort orders strings). */
  readonly #ids: readonly string[];
  /** For each of #ids, the index of its scope in #scopes. */
  readonly #owners: readonly number[];
  readonly #scopes: readonly ScopeKey[];
  #materialised = false;

  constructor(ids: readonly string[], owners: readonly number[], scopes: readonly ScopeKey[]) {
    super();
    this.#ids = ids;
    this.#owners = owners;
    this.#scopes = scopes;
  }

  override get(keyId: KeyId): ScopeKey | undefined {
    const own = super.get(keyId);
    if (own !== undefined || this.#materialised) return own;
    const ids = this.#ids;
    let low = 0;
    let high = ids.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const id = ids[mid] as string;
      if (id === keyId) return this.#scopes[this.#owners[mid] as number];
      if (id < keyId) low = mid + 1;
      else high = mid - 1;
    }
    return undefined;
  }

  override has(keyId: KeyId): boolean {
    return this.get(keyId) !== undefined;
  }

  override get size(): number {
    this.#materialise();
    return super.size;
  }

  override delete(keyId: KeyId): boolean {
    this.#materialise();
    return super.delete(keyId);
  }

  override clear(): void {
    this.#materialised = true;
    super.clear();
  }

  override forEach(
    each: (value: ScopeKey, key: KeyId, map: Map<KeyId, ScopeKey>) => void,
    self?: unknown,
  ): void {
    this.#materialise();
    super.forEach(each, self);
  }

  override entries(): MapIterator<[KeyId, ScopeKey]> {
    this.#materialise();
    return super.entries();
  }

  override keys(): MapIterator<KeyId> {
    this.#materialise();
    return super.keys();
  }

  override values(): MapIterator<ScopeKey> {
    this.#materialise();
    return super.values();
  }

  override [Symbol.iterator](): MapIterator<[KeyId, ScopeKey]> {
    return this.entries();
  }

  /** Every header entry the replay did not set, into the Map itself. */
  #materialise(): void {
    if (this.#materialised) return;
    this.#materialised = true;
    this.#ids.forEach((id, i) => {
      if (!super.has(id as KeyId))
        super.set(id as KeyId, this.#scopes[this.#owners[i] as number] as ScopeKey);
    });
  }
}
