import { userInfo } from 'node:os';
import type { KeyCacheOptions } from '../cache/keyCache.js';
import type { EnvelopeOptions } from '../crypto/envelope.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import type { EventStore } from '../store/eventStore.js';
import type { KeyResolverOptions } from './keyResolver.js';

/**
 * What a Ledger is opened with (Ledger.open): the store and provider, and every setting with its
 * default. Apart from ledger.ts, which wires the services together, so that the options a caller
 * (src/host, tests, the package's users) reads are one short file, not the middle of the facade.
 */

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
  /**
   * Append a checkpoint (tamper evidence, docs/audit.md) once this many ledger events were written
   * since the last one (default 1000); 0 leaves checkpoints to `checkpoint()`.
   */
  readonly checkpointEvery?: number;
  /**
   * Keep a historic snapshot for as-of queries at least this many positions apart, and at least as
   * many as the view has entries (default 10000); 0 keeps none (queries then replay from the start).
   */
  readonly asOfEvery?: number;
  /**
   * Default grace period of a scheduled key destruction, in milliseconds (default 7 days; 0 to
   * 10 years). scheduleKeyDestruction's `graceMs` overrides it per call. docs/audit.md.
   */
  readonly destroyGracePeriodMs?: number;
  /**
   * The rollback anchor file (docs/audit.md, "Rollback"): a path meant for another volume or
   * machine. Every checkpoint is also appended there, and verify() compares the store with its
   * newest line, reporting `rollback` when the store is older. Default: none.
   */
  readonly anchorFile?: string;
  /**
   * `whole` (default): the whole keymeta view, restored from the snapshot and kept current, as a
   * long-running process needs. `point`, for a one-shot command about one scope (the CLI's
   * show-key-status, rotate, …): the system keys from their stream and each scope from its own
   * streams when first used, so opening costs O(system keys), not O(ledger). A point ledger writes
   * no snapshots and refuses what needs every scope (listScopes, destroyDueKeys, rewrap) with a
   * TypeError.
   */
  readonly view?: 'whole' | 'point';
}

/** The actor recorded when neither the options nor an operation name one: the OS user. */
export function defaultActor(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}
