import type { Subscription } from 'rxjs';
import {
  type ApiTokensView,
  apiTokensFromSnapshot,
  apiTokensToSnapshot,
  emptyApiTokensView,
  evolveApiTokens,
} from '../../projections/apiTokens.js';
import { emptyKeymetaView, evolveKeymeta, type KeymetaView } from '../../projections/keymeta.js';
import { KeymetaReplay } from '../../projections/keymetaReplay.js';
import { keymetaFromSnapshot } from '../../projections/keymetaSnapshot.js';
import {
  emptySystemKeysView,
  evolveSystemKeys,
  type SystemKeysView,
  type SystemKeyView,
  systemKeysFromSnapshot,
  systemKeysToSnapshot,
} from '../../projections/systemKeys.js';
import { AsOfSeriesWriter } from '../audit/asOfSnapshots.js';
import type { CheckpointMacKeys } from '../audit/checkpointMacKeys.js';
import {
  checkSnapshot,
  openingSnapshotKeys,
  type SealedEvent,
  type SnapshotRejection,
  sealedEventOf,
  sealSnapshot,
} from '../audit/snapshotSeal.js';
import { KeyledgerError } from '../domain/errors.js';
import { type LedgerEvent, parseLedgerEvent } from '../domain/events.js';
import type { KeyScope } from '../domain/identities.js';
import { type StreamNames, streamNames } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore, JsonValue, RecordedEvent, Snapshot } from '../store/eventStore.js';
import { KeymetaRowSnapshots } from './keymetaRowSnapshots.js';
import { PointScopes } from './pointScopes.js';

/** Rejections kept for the caller to see (a bound, not a log). */
const MAX_REJECTIONS = 100;

export interface ProjectorOptions {
  /** Save a snapshot after this many applied events (default 1000). */
  readonly snapshotEvery?: number;
  /** Snapshot name; one per ledger prefix. */
  readonly snapshotName: string;
  /**
   * Keep the historic snapshots as-of queries start from (src/audit/asOfSnapshots.ts), at least
   * this many positions apart (default 10000); 0: none.
   */
  readonly asOfEvery?: number;
  /** Checks the stored snapshot's seal at start (src/audit/snapshotSeal.ts), with the system keys the system stream records. */
  readonly provider: ManagedKeyProvider;
  readonly systemStream: string;
  /**
   * `whole` (default): the whole keymeta view, restored from the snapshot and kept current.
   * `point`, for a one-shot command about one scope: the system keys and API tokens from their
   * streams, and only the scopes asked for (`ensureScope`), each from its own streams; no snapshot
   * is read or written. A point view cannot list scopes or answer for the whole ledger.
   */
  readonly view?: { readonly kind: 'whole' } | { readonly kind: 'point'; readonly names: StreamNames };
}

type Waiter = { readonly position: bigint; resolve(): void; reject(error: unknown): void };

/**
 * Keeps this process's read models (keymeta view, system keys, API tokens) current from the store:
 * restore the snapshot, catch up by reading, then follow the live subscription. Admin calls wait for their
 * own writes here (read-your-writes). An event that fails its schema stops the projector: every
 * later read and wait fails with that error, naming stream and revision, instead of serving a view
 * that silently skipped something.
 */
export class LedgerProjector {
  readonly #store: EventStore;
  readonly #prefix: string;
  readonly #snapshotEvery: number;
  readonly #snapshotName: string;
  readonly #provider: ManagedKeyProvider;
  readonly #systemStream: string;
  /** The system keys' MAC keys under the snapshot label: snapshots are sealed only once these are set. */
  #sealKeys: CheckpointMacKeys | null = null;
  /**
   * The event at this view's position (what a snapshot taken now is bound to); null before the
   * first event and while the view's last event is in a stream that may be deleted (below).
   */
  #lastEvent: (() => SealedEvent) | null = null;
  /**
   * Whether a stream's events may be deleted: material streams go with their key's destruction
   * (crypto-shredding, src/ledger/keyDestruction.ts), every other stream of the ledger stays. A
   * seal must name an event that stays, or a legitimately made snapshot looks tampered with
   * (`snapshot-event-mismatch`) once its event is deleted; so a snapshot is taken only at a
   * position whose event stays (the state is not kept for older positions: the view changes in
   * place). Material events come in short runs (a key's first copy before the scope event that
   * introduces it, a rewrap batch before its progress event), so a due snapshot waits little.
   */
  readonly #deletable: (stream: string) => boolean;
  /** snapshotNow was called while the last event was material: taken at the next event that stays. */
  #snapshotOwed = false;
  readonly #rejections: SnapshotRejection[] = [];
  #keymeta: KeymetaView = emptyKeymetaView();
  /**
   * While catching up (nobody holds the ledger yet), the keymeta view is folded by a replay that
   * changes its own scope states in place; reading the view (the getter) is a boundary.
   */
  #replay: KeymetaReplay | null = null;
  #systemKeys: SystemKeysView = emptySystemKeysView();
  #apiTokens: ApiTokensView = emptyApiTokensView();
  #sinceSnapshot = 0;
  #snapshotDue = false;
  #snapshotting: Promise<void> = Promise.resolve();
  #subscription: Subscription | null = null;
  /** The latest occurredAt applied (ms), kept with the snapshot: as-of queries order time by it. */
  #maxOccurredAt: number | null = null;
  readonly #asOf: AsOfSeriesWriter | null;
  #asOfDue = false;
  #catchingUp = false;
  #failure: unknown = null;
  #waiters: Waiter[] = [];
  readonly #listeners = new Set<(event: LedgerEvent) => void>();
  readonly #point: PointScopes | null;
  readonly #pointNames: StreamNames | null;
  /** The whole view's snapshot, one row per scope (null for a point view, which takes none). */
  readonly #rows: KeymetaRowSnapshots | null;

  constructor(store: EventStore, prefix: string, options: ProjectorOptions) {
    this.#store = store;
    this.#prefix = prefix;
    this.#snapshotEvery = options.snapshotEvery ?? 1000;
    this.#snapshotName = options.snapshotName;
    this.#provider = options.provider;
    this.#systemStream = options.systemStream;
    const names = streamNames(prefix);
    this.#deletable = (stream) => names.materialKeyOf(stream) !== null;
    const view = options.view ?? { kind: 'whole' };
    this.#pointNames = view.kind === 'point' ? view.names : null;
    this.#point = view.kind === 'point' ? new PointScopes(store, view.names) : null;
    this.#rows = view.kind === 'point' ? null : new KeymetaRowSnapshots(store, options.snapshotName);
    const asOfEvery = this.#point !== null ? 0 : (options.asOfEvery ?? 10_000);
    this.#asOf = asOfEvery === 0 ? null : new AsOfSeriesWriter(store, prefix, asOfEvery);
  }

  /** Whether this is a point view (only the scopes asked for; see ProjectorOptions.view). */
  get isPoint(): boolean {
    return this.#point !== null;
  }

  /**
   * Makes sure the view holds `scope` as the whole view would at this position: a no-op for a
   * whole view; a point view reads the scope's streams the first time.
   */
  ensureScope(scope: KeyScope): Promise<void> {
    this.#throwIfFailed();
    return this.#point === null ? Promise.resolve() : this.#point.ensure(scope, () => this.#keymeta);
  }

  /** As ensureScope, for the scope that owns a key id (decrypt). */
  ensureKeyScope(keyId: string): Promise<void> {
    this.#throwIfFailed();
    return this.#point === null ? Promise.resolve() : this.#point.ensureKey(keyId, () => this.#keymeta);
  }

  get position(): bigint {
    return this.#keymeta.position;
  }

  /**
   * Stored snapshots this process found and did not use (tampered, unbound, unverifiable), in the
   * order found: the view was rebuilt from the events instead. The CLI prints them as warnings.
   */
  get snapshotRejections(): readonly SnapshotRejection[] {
    return this.#rejections;
  }

  /** Records a rejected snapshot (the as-of queries report theirs here too). */
  reportRejection(rejection: SnapshotRejection): void {
    if (this.#rejections.length < MAX_REJECTIONS) this.#rejections.push(rejection);
  }

  /** The keys snapshots are sealed with from now on (the ledger's system keys, snapshot label). */
  useSealKeys(keys: CheckpointMacKeys): void {
    this.#sealKeys = keys;
  }

  get keymeta(): KeymetaView {
    this.#throwIfFailed();
    // Whoever reads the view may keep its states: the replay must not change them from now on.
    this.#replay?.view();
    return this.#keymeta;
  }

  /** The whole keymeta view, for what reads every scope (list, due destructions, rewrap). */
  wholeKeymeta(what: string): KeymetaView {
    if (this.#point !== null)
      throw new TypeError(`${what} needs the whole view; this ledger was opened as a point ledger`);
    return this.keymeta;
  }

  get systemKeys(): SystemKeysView {
    this.#throwIfFailed();
    return this.#systemKeys;
  }

  /** The service's API tokens (hashes only), as the token stream records them. */
  get apiTokens(): ApiTokensView {
    this.#throwIfFailed();
    return this.#apiTokens;
  }

  latestSystemKey(): SystemKeyView | null {
    return this.systemKeys.latest;
  }

  /** Called for every event applied, after the read models include it (caches hook in here). */
  onApplied(listener: (event: LedgerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Restores the snapshot and catches up with the store; then follows it live. */
  async start(): Promise<void> {
    if (this.#pointNames !== null) await this.#startPoint(this.#pointNames);
    else await this.#restore();
    await this.#asOf?.load();
    this.#catchingUp = true;
    // A point ledger's view holds only the scopes it loaded: it folds event by event (accepts()).
    this.#replay = this.#pointNames === null ? new KeymetaReplay(this.#keymeta) : null;
    try {
      for await (const recorded of this.#store.readAll({
        after: this.position,
        streamPrefix: this.#prefix,
      })) {
        this.#apply(recorded);
        this.#throwIfFailed();
      }
    } finally {
      this.#replay?.view();
      this.#replay = null;
      this.#catchingUp = false;
    }
    this.#subscription = this.#store
      .subscribe({ after: this.position, streamPrefix: this.#prefix })
      .subscribe({ next: (recorded) => this.#apply(recorded), error: (error) => this.#fail(error) });
  }

  /** Resolves once this process has applied `position` (rejects if the projector stopped). */
  waitForPosition(position: bigint): Promise<void> {
    // Rejects, never throws: the failure may have come in the same turn as the append waited for.
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.position >= position) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ position, resolve, reject }));
  }

  async stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = null;
    // At close, a snapshot is worth writing once replaying what came since it would cost about a
    // quarter of what writing it costs (both grow with the view).
    // A save of changed rows costs what changed: always worth it. Without a row snapshot to
    // change (a new ledger, one restored from a one-document snapshot, or a rejected one), every
    // row is written once, so the next process starts from rows and saves only changes.
    if (
      this.#failure === null &&
      this.#lastEvent !== null &&
      (this.#rows?.incremental === false || this.#sinceSnapshot > 0)
    ) {
      this.#takeSnapshot();
    }
    // Marks taken since the as-of index was last saved.
    const asOf = this.#asOf;
    if (this.#failure === null && asOf !== null)
      this.#snapshotting = this.#snapshotting.then(() => asOf.flush()).catch(() => undefined);
    await this.#snapshotting;
    this.#fail(new KeyledgerError('ERR_STORE_CLOSED', 'the ledger is closed', {}));
  }

  /**
   * A point view starts at the store's head with the system keys and API tokens folded from their
   * own (short) streams; scopes come later, when asked for.
   */
  async #startPoint(names: StreamNames): Promise<void> {
    const head = await this.#store.headPosition();
    for (const stream of [names.system, names.tokens]) {
      for (const recorded of await this.#store.readStream(stream)) {
        if (recorded.position > head) break;
        const event = parseLedgerEvent(recorded);
        this.#systemKeys = evolveSystemKeys(this.#systemKeys, event);
        this.#apiTokens = evolveApiTokens(this.#apiTokens, event);
      }
    }
    this.#keymeta.position = head;
  }

  async #restore(): Promise<void> {
    const snapshot = await this.#store.loadSnapshot(this.#snapshotName);
    if (snapshot === null) return;
    // The system keys come from the events (the system stream is short), not from the snapshot
    // being checked: only then can its MAC be checked.
    const keys = await openingSnapshotKeys(this.#store, this.#systemStream, this.#provider);
    try {
      const checked = await checkSnapshot(
        this.#store,
        this.#prefix,
        this.#snapshotName,
        snapshot,
        keys,
        await this.#store.headPosition(),
      );
      if (!checked.ok) {
        this.reportRejection(checked.rejection);
        return;
      }
      let keymeta: KeymetaView | null = null;
      const state = checked.body as {
        keymeta?: JsonValue;
        systemKeys?: JsonValue;
        apiTokens?: JsonValue;
        maxOccurredAt?: JsonValue;
      } | null;
      if (this.#rows !== null && KeymetaRowSnapshots.isRowsBody(state)) {
        const restored = await this.#rows.restore(state, snapshot.position, keys);
        if (restored.kind === 'mismatch') {
          this.reportRejection({
            snapshot: this.#snapshotName,
            position: snapshot.position,
            kind: 'snapshot-rows-mismatch',
            message: 'its rows do not add up to the digest its seal holds',
          });
          return;
        }
        if (restored.kind === 'restored') keymeta = restored.view;
      } else if (state?.keymeta !== undefined) {
        // A one-document snapshot (written before row snapshots): read once, replaced at the next save.
        keymeta = keymetaFromSnapshot(state.keymeta, snapshot.position);
      }
      this.#restoreRest(keymeta, state, snapshot.position, checked.event);
    } finally {
      keys.close();
    }
  }

  #restoreRest(
    keymeta: KeymetaView | null,
    state: { systemKeys?: JsonValue; apiTokens?: JsonValue; maxOccurredAt?: JsonValue } | null,
    position: bigint,
    event: SealedEvent,
  ): void {
    const maxOccurredAt =
      typeof state?.maxOccurredAt === 'string' ? Date.parse(state.maxOccurredAt) : Number.NaN;
    const systemKeys =
      state?.systemKeys === undefined ? null : systemKeysFromSnapshot(state.systemKeys, position);
    const apiTokens = state?.apiTokens === undefined ? null : apiTokensFromSnapshot(state.apiTokens);
    // An unusable snapshot (older format) is ignored: the view is rebuilt by replay.
    if (keymeta === null || systemKeys === null || apiTokens === null || Number.isNaN(maxOccurredAt)) return;
    this.#keymeta = keymeta;
    this.#systemKeys = systemKeys;
    this.#apiTokens = apiTokens;
    this.#maxOccurredAt = maxOccurredAt;
    // A snapshot sealed to a material event (written before seals avoided them) is used, never re-sealed.
    this.#lastEvent = this.#deletable(event.stream) ? null : () => event;
  }

  #apply(recorded: RecordedEvent): void {
    if (this.#failure !== null || recorded.position <= this.position) return;
    let event: LedgerEvent;
    try {
      event = parseLedgerEvent(recorded);
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#lastEvent = this.#deletable(recorded.streamName) ? null : sealedEventOf(recorded);
    if (this.#replay !== null) this.#replay.apply(event);
    else if (this.#point === null || this.#point.accepts(event))
      this.#keymeta = evolveKeymeta(this.#keymeta, event);
    else this.#keymeta.position = event.position;
    this.#systemKeys = evolveSystemKeys(this.#systemKeys, event);
    this.#apiTokens = evolveApiTokens(this.#apiTokens, event);
    const occurredAt = Date.parse(event.meta.occurredAt);
    if (this.#maxOccurredAt === null || occurredAt > this.#maxOccurredAt) this.#maxOccurredAt = occurredAt;
    for (const listener of this.#listeners) listener(event);
    this.#releaseWaiters();
    this.#asOfStep();
    // A snapshot costs time proportional to the view, so one is taken only after at least as many
    // events as the view has entries (amortised O(1) per event), and never inside event
    // application: waiters are released first, and the snapshot is taken in a later microtask (not
    // a later macrotask: the store delivers in microtasks, and a burst of appends that never yields
    // to the event loop would otherwise postpone every snapshot to its end).
    if (this.#point !== null) return;
    this.#rows?.touched(this.#keymeta, event);
    const every =
      this.#rows?.incremental === true
        ? this.#snapshotEvery
        : Math.max(this.#snapshotEvery, this.#viewSize());
    // At a material event no snapshot can be sealed: the count keeps growing, the next event that
    // stays takes it.
    if (
      (++this.#sinceSnapshot >= every || this.#snapshotOwed) &&
      this.#lastEvent !== null &&
      !this.#snapshotDue
    ) {
      this.#snapshotDue = true;
      queueMicrotask(() => {
        this.#snapshotDue = false;
        if (this.#failure === null && this.#sinceSnapshot > 0 && this.#lastEvent !== null)
          this.#takeSnapshot().catch(() => undefined);
      });
    }
  }

  /**
   * The as-of series: while catching up nobody waits on this process, so the view is captured at
   * once (a replay from scratch leaves a whole series); live, in a later microtask, like the snapshot.
   */
  #asOfStep(): void {
    if (this.#asOf === null || this.#asOfDue) return;
    if (
      !this.#asOf.isDue(this.position, this.#viewSize(), this.#sealKeys !== null && this.#lastEvent !== null)
    )
      return;
    if (this.#catchingUp) {
      this.#captureAsOf();
      return;
    }
    this.#asOfDue = true;
    queueMicrotask(() => {
      this.#asOfDue = false;
      if (this.#failure === null) this.#captureAsOf();
    });
  }

  #captureAsOf(): void {
    if (this.#asOf === null || this.#maxOccurredAt === null) return;
    const seal = this.#sealer();
    const keys = this.#sealKeys;
    const sealing =
      seal === null || keys === null
        ? null
        : // A catch-up's replay changes its states in place: a historic snapshot takes the view at a
          // boundary, so that the states it holds on to never change (src/audit/asOfRows.ts).
          { seal, keys, boundary: () => this.#replay?.view() };
    const save = this.#asOf.capture(this.#keymeta, this.#maxOccurredAt, this.#viewSize(), sealing);
    // Like snapshots, the series is an optimisation: a failed save only costs later queries replay.
    if (save !== null) this.#snapshotting = this.#snapshotting.then(save).catch(() => undefined);
  }

  #viewSize(): number {
    return this.#keymeta.scopes.size + this.#keymeta.keyIndex.size;
  }

  /**
   * Saves a snapshot of the view as it is now and reports a failure. Crypto-shredding calls it once
   * the view has applied a destruction: the stored snapshot may still hold the deleted material.
   * If the view's last event is material (another process's rewrap or new key, between its two
   * writes), no snapshot can be sealed now: this process takes it at the next event that stays.
   */
  async snapshotNow(): Promise<void> {
    this.#throwIfFailed();
    // A point view is partial: saved as the snapshot it would lose every other scope.
    if (this.#point !== null) throw new TypeError('a point ledger takes no snapshots; open a whole ledger');
    if (this.#lastEvent === null && this.#sealKeys !== null && this.position > 0n) {
      this.#snapshotOwed = true;
      return;
    }
    await this.#takeSnapshot();
  }

  /**
   * Seals a snapshot of the view as it is now (the body is captured at once; the MAC is computed
   * on a later turn). Null while no snapshot can be sealed: no event applied yet, or no keys.
   */
  #sealer(): ((name: string, body: JsonValue) => Promise<Snapshot>) | null {
    const keys = this.#sealKeys;
    const lastEvent = this.#lastEvent;
    if (keys === null || lastEvent === null) return null;
    const position = this.position;
    return (name, body) => sealSnapshot(keys, name, position, lastEvent(), body);
  }

  #takeSnapshot(): Promise<void> {
    const keys = this.#sealKeys;
    const lastEvent = this.#lastEvent;
    const rows = this.#rows;
    if (keys === null || lastEvent === null || rows === null) {
      // Not sealable yet (the count keeps growing, so the next interval tries again); only
      // snapshotNow's caller sees this.
      const failed = Promise.reject(
        new KeyledgerError('ERR_LEDGER_NOT_INITIALISED', 'no snapshot can be sealed yet', {}),
      );
      failed.catch(() => undefined);
      return failed;
    }
    this.#sinceSnapshot = 0;
    this.#snapshotOwed = false;
    const position = this.position;
    const capture = rows.capture(this.#keymeta);
    const rest = {
      systemKeys: systemKeysToSnapshot(this.#systemKeys),
      apiTokens: apiTokensToSnapshot(this.#apiTokens),
      maxOccurredAt: this.#maxOccurredAt === null ? null : new Date(this.#maxOccurredAt).toISOString(),
    };
    // Snapshots are an optimisation: a failed save is retried at the next interval (writing every
    // row then). Only snapshotNow's caller sees the failure.
    const saved = this.#snapshotting.then(() => rows.save(capture, keys, position, lastEvent(), rest));
    this.#snapshotting = saved.catch(() => undefined);
    return saved;
  }

  #releaseWaiters(): void {
    if (this.#waiters.length === 0) return;
    const pending: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.position <= this.position) waiter.resolve();
      else pending.push(waiter);
    }
    this.#waiters = pending;
  }

  /** The first failure sticks: a close after a schema error still reports the schema error. */
  #fail(error: unknown): void {
    this.#failure = this.#failure ?? error;
    this.#subscription?.unsubscribe();
    this.#subscription = null;
    for (const waiter of this.#waiters) waiter.reject(this.#failure);
    this.#waiters = [];
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure;
  }
}
