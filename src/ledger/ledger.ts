import { userInfo } from 'node:os';
import { isSystemKeyRetired } from '../../projections/systemKeys.js';
import { type HistoryEntry, scopeHistory } from '../audit/history.js';
import { KeyCache, type KeyCacheOptions } from '../cache/keyCache.js';
import { Envelope, type EnvelopeOptions } from '../crypto/envelope.js';
import { EnvelopeStreams } from '../crypto/envelopeStream.js';
import { keyScope } from '../domain/identities.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import { newCorrelationId, type OperationContext } from './eventFactory.js';
import { KeymetaAdmin, type OperationOptions } from './keymetaAdmin.js';
import { KeyResolver, type KeyResolverOptions } from './keyResolver.js';
import { LedgerProjector } from './ledgerProjector.js';
import { refuseRetiredSystemKeys } from './retiredSystemKeys.js';
import { RewrapCampaigns } from './rewrapCampaign.js';
import { DEFAULT_PREFIX, type StreamNames, streamNames } from './streamNames.js';
import { type SystemKeyChange, SystemKeyManager } from './systemKeyManager.js';

export interface LedgerOptions {
  readonly store: EventStore;
  readonly provider: ManagedKeyProvider;
  /** Prefix of every stream of this ledger (default `kl-`). */
  readonly prefix?: string;
  /** Recorded as the actor when an operation names none (default: the OS user). */
  readonly actor?: string;
  /** Save a snapshot of the read models after this many events (default 1000). */
  readonly snapshotEvery?: number;
  /** The clock for event times (tests pin it). */
  readonly now?: () => Date;
  /** L1 sizes and the FAILED-entry lifetime (defaults: HBase's 1000 keys, 100 scopes; 30 s). */
  readonly cache?: KeyCacheOptions;
  /** Whether the resolver asks the provider about unknown scopes (default true). */
  readonly resolver?: KeyResolverOptions;
  readonly envelope?: EnvelopeOptions;
}

function defaultActor(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * A ledger open on a store: the admin API, the system keys, and this process's read models kept
 * current from the store. The store and the provider stay the caller's to close.
 */
export class Ledger {
  readonly admin: KeymetaAdmin;
  /** Which key to use: L1 → keymeta view → provider, kept current by this process's events. */
  readonly resolver: KeyResolver;
  /** Envelope encryption with this ledger's keys (docs/formats.md). */
  readonly envelope: Envelope;
  /** Streaming envelope encryption (constant memory, authenticated chunks) with this ledger's keys. */
  readonly streams: EnvelopeStreams;
  /** STK rewrap campaigns and system-key retirement. */
  readonly rewrap: RewrapCampaigns;
  readonly names: StreamNames;
  readonly #cache: KeyCache;
  readonly #store: EventStore;
  readonly #projector: LedgerProjector;
  readonly #systemKeys: SystemKeyManager;
  readonly #actor: string;

  private constructor(options: LedgerOptions, projector: LedgerProjector, names: StreamNames) {
    this.#store = options.store;
    this.#projector = projector;
    this.names = names;
    this.#actor = options.actor ?? defaultActor();
    const now = options.now ?? (() => new Date());
    this.#systemKeys = new SystemKeyManager({
      store: options.store,
      names,
      // A retired system key is never fetched (to unwrap with) or recorded as current again.
      provider: refuseRetiredSystemKeys(options.provider, (identity) =>
        isSystemKeyRetired(projector.systemKeys, identity),
      ),
      projector,
      now,
    });
    this.admin = new KeymetaAdmin({
      store: options.store,
      names,
      provider: options.provider,
      projector,
      systemKeys: this.#systemKeys,
      now,
      context: (o) => this.#context(o),
    });
    this.#cache = new KeyCache(options.cache);
    this.resolver = new KeyResolver({
      cache: this.#cache,
      projector,
      systemKeys: this.#systemKeys,
      admin: this.admin,
      options: options.resolver,
    });
    this.envelope = new Envelope(this.resolver, options.envelope);
    this.streams = new EnvelopeStreams(this.resolver);
    this.rewrap = new RewrapCampaigns({
      store: options.store,
      names,
      projector,
      systemKeys: this.#systemKeys,
      now,
      context: (o) => this.#context(o),
    });
    // Invalidation runs inside event application, before anyone waiting for that position wakes.
    projector.onApplied((event) => {
      this.resolver.apply(event);
      if (event.type === 'SystemKeyRetired') this.#systemKeys.forget(event.data.identity);
    });
  }

  /** Opens the ledger: restores the snapshot, catches up, and follows the store from then on. */
  static async open(options: LedgerOptions): Promise<Ledger> {
    const names = streamNames(options.prefix ?? DEFAULT_PREFIX);
    const projector = new LedgerProjector(options.store, names.prefix, {
      snapshotName: `${names.prefix}keymeta`,
      snapshotEvery: options.snapshotEvery,
    });
    await projector.start();
    return new Ledger(options, projector, names);
  }

  get isInitialised(): boolean {
    return this.#systemKeys.isInitialised;
  }

  /** The global position this process's read models include. */
  get position(): bigint {
    return this.#projector.position;
  }

  /** Records the provider's system key as the ledger's first (ERR_LEDGER_ALREADY_INITIALISED after). */
  initialise(options?: OperationOptions): Promise<SystemKeyChange> {
    return this.#systemKeys.initialise(this.#context(options));
  }

  /** Every recorded system key (identity, sequence, metadata, retirement); never key bytes. */
  systemKeys(): readonly {
    sequence: number;
    identity: string;
    metadata: string;
    recordedAt: string;
    retiredAt: string | null;
  }[] {
    return this.#projector.systemKeys.keys;
  }

  /** Waits until this process has applied `position` (e.g. one another process's call returned). */
  waitForPosition(position: bigint): Promise<void> {
    return this.#projector.waitForPosition(position);
  }

  /** The events of a scope in order, with actor, reason, time and the state change each made. */
  history(custodian: string, namespace?: string): Promise<HistoryEntry[]> {
    const scope = keyScope(custodian, namespace);
    return scopeHistory(this.#store, this.names.scope(scope), scope);
  }

  async close(): Promise<void> {
    await this.#projector.stop();
    this.envelope.close();
    this.#cache.clear();
    this.#systemKeys.close();
  }

  #context(options: OperationOptions | undefined): OperationContext {
    return {
      actor: options?.actor ?? this.#actor,
      reason: options?.reason ?? null,
      correlationId: options?.correlationId ?? newCorrelationId(),
      causationId: null,
    };
  }
}
