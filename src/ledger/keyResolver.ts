import type { KeymetaView } from '../../projections/keymeta.js';
import { invalidationsFor } from '../cache/cacheInvalidation.js';
import { type CacheMetrics, type LayerCounters, newCounters } from '../cache/cacheMetrics.js';
import type { KeyCache } from '../cache/keyCache.js';
import type { ActiveResolution, CachedKey, ResolutionTarget } from '../crypto/keySource.js';
import { isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import type { LedgerEvent } from '../domain/events.js';
import {
  type KeyId,
  type KeyScope,
  parseCustodian,
  parseKeyId,
  parseNamespace,
  type ScopeKey,
  scopeKey,
} from '../domain/identities.js';
import type { ManagedKey, ScopeState } from '../domain/scopeState.js';
import type { KeymetaAdmin } from './keymetaAdmin.js';
import type { LedgerProjector } from './ledgerProjector.js';
import type { SystemKeyHandles } from './systemKeyHandles.js';

export interface KeyResolverOptions {
  /**
   * Ask the provider (L3) about a candidate scope the ledger has no answer for (no marker, or a
   * FAILED one), persisting the answer as events. Default true, as in HBase.
   */
  readonly dynamicLookup?: boolean;
  /**
   * How long a resolution waits for the provider before it treats the candidate as unanswered and
   * moves on (default 1000 ms). The provider's answer, when it comes, is still recorded.
   */
  readonly providerTimeoutMs?: number;
}

/** The most candidate namespaces one target may list (HBase's order has four). */
export const MAX_CANDIDATES = 8;

/** What a lookup still needs before it can decide synchronously. */
type Fetch =
  | { readonly kind: 'need-stk'; readonly identity: string }
  | { readonly kind: 'need-provider'; readonly scope: KeyScope; readonly scopeKey: ScopeKey };
type Step<T> = { readonly kind: 'done'; readonly value: T } | Fetch;

/** Fetches one lookup may need (an STK, a provider answer per candidate) before it gives up. */
const MAX_FETCHES = MAX_CANDIDATES + 4;

/**
 * KeyResolver: which key to use. L1 (this process's caches) → L2 (the keymeta view, with the
 * wrapped material, no store read) → L3 (the provider, when dynamic lookup is on).
 *
 * Every answer is computed and cached within one synchronous step over the view, after any await:
 * invalidations are applied synchronously with the events, so nothing the view no longer allows
 * can enter the cache behind them. Concurrent misses for one target or key share one computation.
 */
export class KeyResolver {
  readonly #cache: KeyCache;
  readonly #projector: LedgerProjector;
  readonly #systemKeys: SystemKeyHandles;
  readonly #admin: KeymetaAdmin;
  readonly #dynamicLookup: boolean;
  readonly #providerTimeoutMs: number;
  readonly #inflight = new Map<string, Promise<unknown>>();
  readonly #l2: LayerCounters = newCounters();
  readonly #l3: LayerCounters & { failures: number } = { ...newCounters(), failures: 0 };

  constructor(deps: {
    cache: KeyCache;
    projector: LedgerProjector;
    systemKeys: SystemKeyHandles;
    admin: KeymetaAdmin;
    options?: KeyResolverOptions;
  }) {
    this.#cache = deps.cache;
    this.#projector = deps.projector;
    this.#systemKeys = deps.systemKeys;
    this.#admin = deps.admin;
    this.#dynamicLookup = deps.options?.dynamicLookup ?? true;
    this.#providerTimeoutMs = deps.options?.providerTimeoutMs ?? 1000;
    if (!(this.#providerTimeoutMs > 0)) throw new TypeError('providerTimeoutMs must be positive');
  }

  /** Prepares a custodian and its candidate namespaces (in order) for repeated resolution. */
  target(custodian: string, namespaces: readonly string[]): ResolutionTarget {
    if (namespaces.length === 0 || namespaces.length > MAX_CANDIDATES) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', `give 1 to ${MAX_CANDIDATES} candidate namespaces`, {
        candidates: namespaces.length,
      });
    }
    const cust = parseCustodian(custodian);
    const parsed = namespaces.map(parseNamespace);
    const scopes = parsed.map((namespace) => ({ custodian: cust, namespace }));
    const scopeKeys = scopes.map(scopeKey);
    // JSON, not a separator: namespaces may contain any character, NUL included.
    return { custodian: cust, namespaces: parsed, scopes, scopeKeys, cacheKey: JSON.stringify(scopeKeys) };
  }

  /** L1 only, synchronous: the cached resolution, null for a cached FAILED answer, undefined on a miss. */
  peekActive(target: ResolutionTarget): ActiveResolution | null | undefined {
    return this.#cache.peekActive(target);
  }

  /**
   * The first candidate scope with an ACTIVE key, and its key; null if none has one (cached as a
   * FAILED entry until it expires or an event about one of the candidates arrives). The key's
   * bytes belong to the cache: use them before your next await.
   */
  resolveActive(target: ResolutionTarget): Promise<ActiveResolution | null> {
    const hit = this.#cache.peekActive(target);
    if (hit !== undefined) return Promise.resolve(hit);
    return this.#once(`a\0${target.cacheKey}`, () => this.#resolveActiveMiss(target));
  }

  /** Any usable key (ACTIVE or INACTIVE) by id; null if the ledger has none it may use. */
  resolveForDecrypt(keyId: string): Promise<CachedKey | null> {
    let id: KeyId;
    try {
      id = parseKeyId(keyId);
    } catch {
      return Promise.resolve(null);
    }
    const hit = this.#cache.peekKey(id);
    if (hit !== undefined) return Promise.resolve(hit);
    return this.#once(`k\0${id}`, () => this.#resolveKeyMiss(id));
  }

  /**
   * Called whenever a key leaves L1 (evicted, invalidated, replaced, closed), before its bytes are
   * zeroed: whoever derived secrets from it drops them here.
   */
  onKeyLeave(listener: (key: CachedKey) => void): () => void {
    return this.#cache.onKeyLeave(listener);
  }

  /** Applies one ledger event's invalidations (called for every event this process applies). */
  apply(event: LedgerEvent): void {
    for (const inv of invalidationsFor(event)) {
      switch (inv.kind) {
        case 'scope':
          this.#cache.invalidateScope(inv.scopeKey);
          break;
        case 'key':
          this.#cache.invalidateKey(inv.keyId);
          break;
        case 'keysOf':
          this.#cache.invalidateKeysOf(inv.scopeKey);
          break;
        case 'all':
          this.#cache.clear();
          break;
        default: {
          const unreachable: never = inv;
          throw new TypeError(`unknown invalidation ${String(unreachable)}`);
        }
      }
    }
  }

  metrics(): CacheMetrics {
    const size = this.#cache.size;
    return {
      l1: { ...this.#cache.counters },
      l1Keys: { size: size.keys, max: size.maxKeys },
      l1Resolutions: { size: size.resolutions, max: size.maxResolutions },
      l2: { ...this.#l2 },
      l3: { ...this.#l3 },
      negativeEntries: size.negative,
      appliedPosition: this.#projector.position,
    };
  }

  async #resolveActiveMiss(target: ResolutionTarget): Promise<ActiveResolution | null> {
    // A point ledger reads the candidate scopes into its view first (a no-op for the whole view).
    for (const scope of target.scopes) await this.#projector.ensureScope(scope);
    const tried = new Set<ScopeKey>();
    for (let fetches = 0; ; fetches++) {
      const step = this.#activeStep(target, tried);
      if (step.kind === 'done') return step.value;
      if (fetches >= MAX_FETCHES) throw this.#stuck();
      await this.#fetch(step, tried);
    }
  }

  async #resolveKeyMiss(keyId: KeyId): Promise<CachedKey | null> {
    await this.#projector.ensureKeyScope(keyId);
    for (let fetches = 0; ; fetches++) {
      const step = this.#keyStep(keyId);
      if (step.kind === 'done') return step.value;
      if (fetches >= MAX_FETCHES) throw this.#stuck();
      await this.#fetch(step, new Set());
    }
  }

  #stuck(): KeyledgerError {
    return new KeyledgerError(
      'ERR_SYSTEM_KEY_NOT_FOUND',
      'a system key could not be kept in L1 long enough to use',
      {},
    );
  }

  /** Synchronous: decides from the view now, caching what it decides, or says what to fetch first. */
  #activeStep(target: ResolutionTarget, tried: Set<ScopeKey>): Step<ActiveResolution | null> {
    const view = this.#projector.keymeta;
    let provisional = false;
    for (let i = 0; i < target.scopeKeys.length; i++) {
      const sk = target.scopeKeys[i] as ScopeKey;
      const state = view.scopes.get(sk);
      const active = state?.activeKeyId == null ? undefined : state.keys.get(state.activeKeyId);
      if (state !== undefined && state.marker === 'ACTIVE' && active !== undefined) {
        this.#l2.hits++;
        const step = this.#usable(view, state, active);
        if (step.kind !== 'done') return step;
        if (step.value === null) continue;
        const resolution: ActiveResolution = { scope: state.scope, candidate: i, key: step.value };
        this.#cache.putResolution(target, resolution, provisional);
        return { kind: 'done', value: resolution };
      }
      this.#l2.misses++;
      const unknown = state === undefined || state.marker === null || state.marker === 'FAILED';
      // A candidate skipped for want of a provider answer may have one later: ask again then.
      if (this.#dynamicLookup && unknown) provisional = true;
      const scope = target.scopes[i];
      if (this.#dynamicLookup && unknown && scope !== undefined && !tried.has(sk)) {
        return { kind: 'need-provider', scope, scopeKey: sk };
      }
    }
    this.#cache.putNegativeResolution(target);
    return { kind: 'done', value: null };
  }

  #keyStep(keyId: KeyId): Step<CachedKey | null> {
    const view = this.#projector.keymeta;
    const owner = view.keyIndex.get(keyId);
    const state = owner === undefined ? undefined : view.scopes.get(owner);
    const key = state?.keys.get(keyId);
    if (state === undefined || key === undefined) {
      // L3 cannot find a key by id alone: providers name keys by metadata.
      this.#l2.misses++;
      this.#cache.putNegativeKey(keyId);
      return { kind: 'done', value: null };
    }
    this.#l2.hits++;
    const step = this.#usable(view, state, key);
    if (step.kind === 'done' && step.value === null) this.#cache.putNegativeKey(keyId);
    return step;
  }

  /** The key's bytes from L1 or unwrapped from the view's material, if its state allows use. */
  #usable(view: KeymetaView, state: ScopeState, key: ManagedKey): Step<CachedKey | null> {
    if (key.state !== 'ACTIVE' && key.state !== 'INACTIVE') return { kind: 'done', value: null };
    const held = this.#cache.heldKey(key.keyId);
    if (held !== undefined && held.state === key.state) return { kind: 'done', value: held };
    const material = view.materials.get(key.keyId);
    if (material === undefined) return { kind: 'done', value: null };
    const stk = this.#systemKeys.peek(material.stkIdentity);
    if (stk === undefined) return { kind: 'need-stk', identity: material.stkIdentity };
    const bytes = stk.unwrap(
      material.wrapped,
      { ...state.scope, metadataHash: key.metadataHash },
      key.checksum,
    );
    const cached = this.#cache.putKey({
      keyId: key.keyId,
      scope: state.scope,
      scopeKey: scopeKey(state.scope),
      state: key.state,
      metadataHash: key.metadataHash,
      checksum: key.checksum,
      key: bytes,
    });
    return { kind: 'done', value: cached };
  }

  async #fetch(step: Fetch, tried: Set<ScopeKey>): Promise<void> {
    if (step.kind === 'need-stk') {
      await this.#systemKeyWithin(step.identity);
      return;
    }
    tried.add(step.scopeKey);
    const lookup = this.#admin.enableKeyManagement(step.scope.custodian, step.scope.namespace, {
      actor: 'keyledger-resolver',
      reason: 'dynamic lookup',
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#providerTimeoutMs);
      timer.unref();
    });
    try {
      const result = await Promise.race([lookup, timeout]);
      if (result === 'timeout') {
        // A slow provider must not hold up candidates the view can answer; its answer is still
        // recorded when it comes, and the provisional result expires.
        lookup.catch(() => undefined);
        this.#l3.failures++;
      } else if (result.key?.state === 'ACTIVE') this.#l3.hits++;
      else this.#l3.misses++;
    } catch {
      // Provider down or answering nonsense: this candidate is skipped, and what the resolution
      // ends with expires like a FAILED entry, so the provider is asked again later.
      this.#l3.failures++;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A system key from the provider within the lookup deadline. Without it, a lookup whose system
   * key was not held yet hung as long as the provider did, and a provider's own error escaped
   * untyped (test/reliability/providerFaultsMultiProcess.test.ts found both).
   */
  async #systemKeyWithin(identity: string): Promise<void> {
    const fetching = this.#systemKeys.byIdentity(identity);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#providerTimeoutMs);
      timer.unref();
    });
    try {
      if ((await Promise.race([fetching, timeout])) === 'timeout') {
        // The answer may still come; the handle it brings is kept for the next lookup.
        fetching.catch(() => undefined);
        throw new KeyledgerError(
          'ERR_PROVIDER_FAILED',
          `the provider did not hand out system key ${identity} within ${this.#providerTimeoutMs} ms`,
          {},
        );
      }
    } catch (error) {
      if (isKeyledgerError(error)) throw error;
      throw new KeyledgerError(
        'ERR_PROVIDER_FAILED',
        `the provider failed to hand out system key ${identity}`,
        {},
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  #once<T>(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key);
    if (running !== undefined) return running as Promise<T>;
    const promise = work().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return promise;
  }
}
