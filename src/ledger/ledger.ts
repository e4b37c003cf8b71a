import type { Writable } from 'node:stream';
import type { Observable } from 'rxjs';
import { isSystemKeyRetired } from '../../projections/systemKeys.js';
import { type AsOfTarget, type KeymetaAsOf, keymetaAsOf, scopeAsOf } from '../audit/asOf.js';
import type { AuditExportSummary } from '../audit/auditExport.js';
import { ChainingEventStore } from '../audit/chainingEventStore.js';
import { assertCheckpointEvery, type CheckpointResult } from '../audit/checkpointer.js';
import { type CheckpointMacKeys, systemKeyMacKeys } from '../audit/checkpointMacKeys.js';
import { type HistoryEntry, keyHistory, scopeHistory, scopeNotFound } from '../audit/history.js';
import { type KeyMetrics, type KeyMetricsRange, keyMetricsFold } from '../audit/keyMetrics.js';
import { LedgerIntegrity, type LedgerVerifyOptions } from '../audit/ledgerIntegrity.js';
import { SNAPSHOT_MAC_LABEL, type SnapshotRejection } from '../audit/snapshotSeal.js';
import type { VerifyReport } from '../audit/verifyReport.js';
import { KeyCache } from '../cache/keyCache.js';
import { Envelope } from '../crypto/envelope.js';
import { EnvelopeStreams } from '../crypto/envelopeStream.js';
import { DEFAULT_STREAMS_PER_DERIVED_KEY } from '../crypto/streamEncryptKeys.js';
import { DEFAULT_DESTROY_GRACE_MS, MAX_DESTROY_GRACE_MS } from '../domain/decideDestroy.js';
import { type LedgerEventType, parseEventOf, parseLedgerEvent, SCOPE_EVENT_TYPES } from '../domain/events.js';
import { keyScope } from '../domain/identities.js';
import type { Journal } from '../journal/decideAndAppend.js';
import { newCorrelationId, type OperationContext } from '../journal/eventFactory.js';
import { DEFAULT_PREFIX, type StreamNames, streamNames } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import { ApiTokens } from './apiTokens.js';
import { DueRotations } from './dueRotations.js';
import { KeyDestruction } from './keyDestruction.js';
import { KeyImports } from './keyImports.js';
import { type ScopeStatusAsOf, toKeyInfo } from './keyInfo.js';
import { KeymetaAdmin } from './keymetaAdmin.js';
import { KeyResolver } from './keyResolver.js';
import { type LedgerEventOf, type LedgerEventsOptions, ledgerEvents } from './ledgerEvents.js';
import { defaultActor, type LedgerOptions } from './ledgerOptions.js';
import { LedgerProjector } from './ledgerProjector.js';
import { LegacyReencryptions } from './legacyReencryption.js';
import type { OperationOptions } from './operationOptions.js';
import { refuseRetiredSystemKeys } from './retiredSystemKeys.js';
import { RewrapCampaigns } from './rewrapCampaign.js';
import { RotationPolicies } from './rotationPolicies.js';
import { ScopeWriter } from './scopeWriter.js';
import { SystemKeyHandles } from './systemKeyHandles.js';
import { type SystemKeyChange, SystemKeyLifecycle } from './systemKeyLifecycle.js';

/** What Ledger.open makes before the catch-up, so that snapshots taken during it can be sealed. */
interface SealingKeys {
  readonly systemKeyProvider: ManagedKeyProvider;
  readonly systemKeys: SystemKeyHandles;
  readonly snapshotKeys: CheckpointMacKeys;
}

/**
 * A ledger open on a store: the admin API, the system keys, and this process's read models kept
 * current from the store. The store and the provider stay the caller's to close. Its options are
 * declared in ledgerOptions.ts.
 */

export class Ledger {
  readonly admin: KeymetaAdmin;
  /** Crypto-shredding: schedule, cancel and run key destructions, and read their receipts. */
  readonly destruction: KeyDestruction;
  /** Which key to use: L1 → keymeta view → provider, kept current by this process's events. */
  readonly resolver: KeyResolver;
  /** Envelope encryption with this ledger's keys (docs/formats.md). */
  readonly envelope: Envelope;
  /** Streaming envelope encryption (constant memory, authenticated chunks) with this ledger's keys. */
  readonly envelopeStreams: EnvelopeStreams;
  /** STK rewrap campaigns and system-key retirement. */
  readonly rewrap: RewrapCampaigns;
  /** Re-encrypting data from before the ledger under imported keys (docs/migration.md). */
  readonly legacyReencryption: LegacyReencryptions;
  /** The service's API tokens: create, list, revoke, and check a presented token. */
  readonly tokens: ApiTokens;
  /** Rotation policies per scope, default and system key: set, clear, list, their history. */
  readonly rotationPolicies: RotationPolicies;
  /** What the rotation policies say is due, and doing it (rotate-due-keys). */
  readonly dueRotations: DueRotations;
  /** Adopting keys that existed before the ledger (import-managed-key, docs/migration.md). */
  readonly imports: KeyImports;
  /** Every stream and snapshot name of this ledger. */
  readonly streamNames: StreamNames;
  readonly #cache: KeyCache;
  readonly #store: EventStore;
  readonly #projector: LedgerProjector;
  readonly #systemKeys: SystemKeyHandles;
  readonly #lifecycle: SystemKeyLifecycle;
  readonly #actor: string;
  readonly #integrity: LedgerIntegrity;
  readonly #now: () => Date;
  /** The system keys under the snapshot label: seals and checks snapshots (src/audit/snapshotSeal.ts). */
  readonly #snapshotKeys: CheckpointMacKeys;

  private constructor(
    options: LedgerOptions,
    projector: LedgerProjector,
    names: StreamNames,
    chained: ChainingEventStore,
    keys: SealingKeys,
  ) {
    this.#store = options.store;
    this.#projector = projector;
    this.streamNames = names;
    this.#actor = options.actor ?? defaultActor();
    const now = options.now ?? (() => new Date());
    this.#now = now;
    const context = (o: OperationOptions | undefined) => this.#context(o);
    // Every write of the ledger goes through this journal (src/journal/decideAndAppend.ts).
    const journal: Journal = { store: options.store, now, view: projector };
    // A retired system key is never fetched (to unwrap with) or recorded as current again.
    const { systemKeyProvider } = keys;
    this.#systemKeys = keys.systemKeys;
    this.#lifecycle = new SystemKeyLifecycle({ journal, names, provider: systemKeyProvider, projector });
    this.#snapshotKeys = keys.snapshotKeys;
    this.#integrity = new LedgerIntegrity({
      store: chained,
      names,
      systemKeys: this.#systemKeys,
      now,
      checkpointEvery: options.checkpointEvery,
      anchorFile: options.anchorFile,
      automaticContext: () => this.#context({ reason: 'automatic checkpoint' }),
    });
    const scopes = new ScopeWriter({ journal, names, projector, systemKeys: this.#systemKeys, context });
    this.admin = new KeymetaAdmin({
      journal,
      names,
      provider: options.provider,
      projector,
      systemKeys: this.#systemKeys,
      lifecycle: this.#lifecycle,
      scopes,
      context,
    });
    this.destruction = new KeyDestruction({
      store: options.store,
      names,
      projector,
      systemKeys: this.#systemKeys,
      scopes,
      now,
      context,
      destroyGraceMs: options.destroyGracePeriodMs ?? DEFAULT_DESTROY_GRACE_MS,
      checkpoint: (context) => this.#integrity.checkpoint(context),
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
    // encryptBuffer reuses a derived key per DEK, as the Envelope does (StreamEncryptKeys).
    this.envelopeStreams = new EnvelopeStreams(this.resolver, {
      streamsPerDerivedKey: DEFAULT_STREAMS_PER_DERIVED_KEY,
    });
    this.rewrap = new RewrapCampaigns({
      journal,
      names,
      projector,
      systemKeys: this.#systemKeys,
      lifecycle: this.#lifecycle,
      context,
    });
    this.tokens = new ApiTokens({ journal, names, projector, context });
    this.legacyReencryption = new LegacyReencryptions({
      journal,
      names,
      projector,
      keys: this.resolver,
      envelope: this.envelope,
      envelopeStreams: this.envelopeStreams,
      context,
    });
    this.imports = new KeyImports({
      journal,
      names,
      provider: options.provider,
      projector,
      systemKeys: this.#systemKeys,
      scopes,
    });
    this.rotationPolicies = new RotationPolicies({ journal, names, projector, context });
    this.dueRotations = new DueRotations({
      journal,
      projector,
      admin: this.admin,
      lifecycle: this.#lifecycle,
      policies: this.rotationPolicies,
      context,
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
    assertCheckpointEvery(options.checkpointEvery);
    const grace = options.destroyGracePeriodMs;
    if (
      grace !== undefined &&
      !(Number.isSafeInteger(grace) && grace >= 0 && grace <= MAX_DESTROY_GRACE_MS)
    ) {
      throw new TypeError('destroyGracePeriodMs must be a whole number of milliseconds from 0 to 10 years');
    }
    const projector = new LedgerProjector(options.store, names.prefix, {
      snapshotName: names.keymetaSnapshot,
      snapshotEvery: options.snapshotEvery,
      asOfEvery: options.asOfEvery,
      provider: options.provider,
      systemStream: names.system,
      view: options.view === 'point' ? { kind: 'point', names } : { kind: 'whole' },
    });
    // The keys that seal snapshots, before the catch-up: a catch-up from the first event then
    // leaves the historic snapshot series behind (without them it could only take marks).
    const systemKeyProvider = refuseRetiredSystemKeys(options.provider, (identity) =>
      isSystemKeyRetired(projector.systemKeys, identity),
    );
    const systemKeys = new SystemKeyHandles({ provider: systemKeyProvider, projector });
    const snapshotKeys = systemKeyMacKeys(systemKeys, SNAPSHOT_MAC_LABEL);
    projector.useSealKeys(snapshotKeys);
    await projector.start();
    // Every append of the ledger goes through the hash chain (src/audit/chainingEventStore.ts).
    const chained = new ChainingEventStore(options.store);
    return new Ledger({ ...options, store: chained }, projector, names, chained, {
      systemKeyProvider,
      systemKeys,
      snapshotKeys,
    });
  }

  get isInitialised(): boolean {
    return this.#systemKeys.isInitialised;
  }

  /**
   * Stored snapshots (keymeta, as-of) this process found and did not use because their seal
   * failed, was missing, or could not be checked (docs/audit.md): the views were rebuilt from the
   * events instead. Kinds other than `snapshot-unbound` and `snapshot-unverifiable` mean someone
   * edited the store; the CLI prints every one as a warning.
   */
  get snapshotRejections(): readonly SnapshotRejection[] {
    return this.#projector.snapshotRejections;
  }

  /** The global position this process's read models include. */
  get position(): bigint {
    return this.#projector.position;
  }

  /** Records the provider's system key as the ledger's first (ERR_LEDGER_ALREADY_INITIALISED after). */
  initialise(options?: OperationOptions): Promise<SystemKeyChange> {
    return this.#lifecycle.initialise(this.#context(options));
  }

  /** Every recorded system key (identity, sequence, metadata, retirement, destruction); never key bytes. */
  systemKeys(): readonly {
    sequence: number;
    identity: string;
    metadata: string;
    recordedAt: string;
    retiredAt: string | null;
    destroyedAt: string | null;
  }[] {
    return this.#projector.systemKeys.keys;
  }

  /** Waits until this process has applied `position` (e.g. one another process's call returned). */
  waitForPosition(position: bigint): Promise<void> {
    return this.#projector.waitForPosition(position);
  }

  /**
   * The events of a scope in order, with actor, reason, time and the state change each made; with
   * `key` (a metadata hash), those of that key, its material (re)wraps included. Errors:
   * ERR_SCOPE_NOT_FOUND, ERR_KEY_NOT_FOUND, ERR_INVALID_METADATA (docs/audit.md).
   */
  async history(
    custodian: string,
    namespace?: string,
    options?: { readonly key?: string },
  ): Promise<HistoryEntry[]> {
    const scope = keyScope(custodian, namespace);
    return options?.key === undefined
      ? scopeHistory(this.#store, this.streamNames, scope)
      : keyHistory(this.#store, this.streamNames, scope, options.key);
  }

  /**
   * The keymeta view of the whole ledger at a global position (bigint) or a time (Date), replayed
   * from the nearest historic snapshot. Errors: ERR_INVALID_AS_OF, ERR_AS_OF_IN_FUTURE,
   * ERR_AS_OF_BEFORE_LEDGER (docs/audit.md).
   */
  async asOf(target: AsOfTarget): Promise<KeymetaAsOf> {
    return keymetaAsOf(this.#store, this.streamNames.prefix, target, this.#now(), {
      keys: this.#snapshotKeys,
      reject: (rejection) => this.#projector.reportRejection(rejection),
    });
  }

  /**
   * One scope at a position or a time, from its own streams, in the shape getScopeStatus answers
   * (plain data: positions are decimal strings); also ERR_SCOPE_NOT_FOUND.
   */
  async scopeAsOf(
    custodian: string,
    namespace: string | undefined,
    target: AsOfTarget,
  ): Promise<ScopeStatusAsOf> {
    const scope = keyScope(custodian, namespace);
    const r = await scopeAsOf(this.#store, this.streamNames, scope, target, this.#now());
    return {
      ...scope,
      at: typeof target === 'bigint' ? target.toString() : target.toISOString(),
      position: r.position.toString(),
      marker: r.state.marker,
      keys: [...r.state.keys.values()].map((k) => toKeyInfo(k, scope)),
    };
  }

  /**
   * The ledger's events as an rxjs Observable of parsed events: catch-up from a position (or
   * `'start'`), or live (`'now'`, the default), filtered by types and scopes, resumable by position.
   */
  events$<T extends LedgerEventType = LedgerEventType>(
    options?: LedgerEventsOptions<T>,
  ): Observable<LedgerEventOf<T>> {
    return ledgerEvents(this.#store, this.streamNames.prefix, () => this.#projector.position, options);
  }

  /**
   * Keys per state at the end of each day and transitions per day, of the whole ledger or of one
   * scope (ERR_SCOPE_NOT_FOUND if it has no events), from the history.
   */
  async keyMetrics(
    options: KeyMetricsRange & { readonly custodian?: string; readonly namespace?: string } = {},
  ): Promise<KeyMetrics> {
    const { custodian, namespace, ...range } = options;
    const fold = keyMetricsFold(range);
    if (custodian === undefined) {
      for await (const recorded of this.#store.readAll({ streamPrefix: this.streamNames.prefix }))
        if (!fold.add(parseLedgerEvent(recorded))) break;
    } else {
      const scope = keyScope(custodian, namespace);
      const stream = await this.#store.readStream(this.streamNames.scope(scope));
      if (stream.length === 0) throw scopeNotFound(scope);
      for (const recorded of stream) if (!fold.add(parseEventOf(recorded, SCOPE_EVENT_TYPES))) break;
    }
    return fold.result();
  }

  /**
   * Appends a checkpoint: every stream's head, MACed under the current system key, so that verify
   * can tell a cut or rewritten ledger. Null if nothing but checkpoints was written since the last.
   */
  checkpoint(options?: OperationOptions): Promise<CheckpointResult | null> {
    return this.#integrity.checkpoint(this.#context(options));
  }

  /**
   * Walks the whole ledger and reports the first event changed, inserted, deleted or reordered, or
   * a stream cut behind a checkpoint (docs/audit.md). A report, never an error, for a tampered ledger.
   */
  verify(options?: LedgerVerifyOptions): Promise<VerifyReport> {
    return this.#integrity.verify(options);
  }

  /** Writes the ledger as JSON lines that `verifyAuditFile` (`verify --file`) checks offline. */
  exportAudit(out: Writable): Promise<AuditExportSummary> {
    return this.#integrity.export(out);
  }

  async close(): Promise<void> {
    this.#integrity.close();
    await this.#projector.stop();
    this.envelope.close();
    this.envelopeStreams.close();
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
