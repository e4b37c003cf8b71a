import type { Subscription } from 'rxjs';
import { emptyKeymetaView, evolveKeymeta, type KeymetaView } from '../../projections/keymeta.js';
import { keymetaFromSnapshot, keymetaToSnapshot } from '../../projections/keymetaSnapshot.js';
import {
  emptySystemKeysView,
  evolveSystemKeys,
  type SystemKeysView,
  type SystemKeyView,
  systemKeysFromSnapshot,
  systemKeysToSnapshot,
} from '../../projections/systemKeys.js';
import { KeyledgerError } from '../domain/errors.js';
import { type LedgerEvent, parseLedgerEvent } from '../domain/events.js';
import type { EventStore, JsonValue, RecordedEvent } from '../store/eventStore.js';

export interface ProjectorOptions {
  /** Save a snapshot after this many applied events (default 1000). */
  readonly snapshotEvery?: number;
  /** Snapshot name; one per ledger prefix. */
  readonly snapshotName: string;
}

type Waiter = { readonly position: bigint; resolve(): void; reject(error: unknown): void };

/**
 * Keeps this process's read models (keymeta view, system keys) current from the store: restore
 * the snapshot, catch up by reading, then follow the live subscription. Admin calls wait for their
 * own writes here (read-your-writes). An event that fails its schema stops the projector: every
 * later read and wait fails with that error, naming stream and revision, instead of serving a view
 * that silently skipped something.
 */
export class LedgerProjector {
  readonly #store: EventStore;
  readonly #prefix: string;
  readonly #snapshotEvery: number;
  readonly #snapshotName: string;
  #keymeta: KeymetaView = emptyKeymetaView();
  #systemKeys: SystemKeysView = emptySystemKeysView();
  #sinceSnapshot = 0;
  #snapshotDue = false;
  #snapshotting: Promise<void> = Promise.resolve();
  #subscription: Subscription | null = null;
  #failure: unknown = null;
  #waiters: Waiter[] = [];
  readonly #listeners = new Set<(event: LedgerEvent) => void>();

  constructor(store: EventStore, prefix: string, options: ProjectorOptions) {
    this.#store = store;
    this.#prefix = prefix;
    this.#snapshotEvery = options.snapshotEvery ?? 1000;
    this.#snapshotName = options.snapshotName;
  }

  get position(): bigint {
    return this.#keymeta.position;
  }

  get keymeta(): KeymetaView {
    this.#throwIfFailed();
    return this.#keymeta;
  }

  get systemKeys(): SystemKeysView {
    this.#throwIfFailed();
    return this.#systemKeys;
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
    await this.#restore();
    for await (const recorded of this.#store.readAll({ after: this.position, streamPrefix: this.#prefix })) {
      this.#apply(recorded);
      this.#throwIfFailed();
    }
    this.#subscription = this.#store
      .subscribe({ after: this.position, streamPrefix: this.#prefix })
      .subscribe({ next: (recorded) => this.#apply(recorded), error: (error) => this.#fail(error) });
  }

  /** Resolves once this process has applied `position` (rejects if the projector stopped). */
  waitForPosition(position: bigint): Promise<void> {
    this.#throwIfFailed();
    if (this.position >= position) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ position, resolve, reject }));
  }

  async stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = null;
    // At close, a snapshot is worth writing once replaying what came since it would cost about a
    // quarter of what writing it costs (both grow with the view).
    if (this.#failure === null && this.#sinceSnapshot > 0 && this.#sinceSnapshot * 4 >= this.#viewSize()) {
      this.#takeSnapshot();
    }
    await this.#snapshotting;
    this.#fail(new KeyledgerError('ERR_STORE_CLOSED', 'the ledger is closed', {}));
  }

  async #restore(): Promise<void> {
    const snapshot = await this.#store.loadSnapshot(this.#snapshotName);
    if (snapshot === null) return;
    const state = snapshot.state as { keymeta?: JsonValue; systemKeys?: JsonValue } | null;
    const keymeta =
      state?.keymeta === undefined ? null : keymetaFromSnapshot(state.keymeta, snapshot.position);
    const systemKeys =
      state?.systemKeys === undefined ? null : systemKeysFromSnapshot(state.systemKeys, snapshot.position);
    // An unusable snapshot (older format) is ignored: the view is rebuilt by replay.
    if (keymeta === null || systemKeys === null) return;
    this.#keymeta = keymeta;
    this.#systemKeys = systemKeys;
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
    this.#keymeta = evolveKeymeta(this.#keymeta, event);
    this.#systemKeys = evolveSystemKeys(this.#systemKeys, event);
    for (const listener of this.#listeners) listener(event);
    this.#releaseWaiters();
    // A snapshot costs time proportional to the view, so one is taken only after at least as many
    // events as the view has entries (amortised O(1) per event), and never inside event
    // application: waiters are released first, and the snapshot is taken on a later turn.
    if (++this.#sinceSnapshot >= Math.max(this.#snapshotEvery, this.#viewSize()) && !this.#snapshotDue) {
      this.#snapshotDue = true;
      setImmediate(() => {
        this.#snapshotDue = false;
        if (this.#failure === null && this.#sinceSnapshot > 0) this.#takeSnapshot();
      });
    }
  }

  #viewSize(): number {
    return this.#keymeta.scopes.size + this.#keymeta.keyIndex.size;
  }

  #takeSnapshot(): void {
    this.#sinceSnapshot = 0;
    const snapshot = {
      position: this.position,
      state: {
        keymeta: keymetaToSnapshot(this.#keymeta),
        systemKeys: systemKeysToSnapshot(this.#systemKeys),
      },
    };
    // Snapshots are an optimisation: a failed save is retried at the next interval.
    this.#snapshotting = this.#snapshotting
      .then(() => this.#store.saveSnapshot(this.#snapshotName, snapshot))
      .catch(() => undefined);
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
