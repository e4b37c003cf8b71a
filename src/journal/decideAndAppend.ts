import type { AppendResult, EventStore, EventToAppend, ExpectedRevision } from '../store/eventStore.js';
import { type JournalEvent, type OperationContext, toStoredEvents } from './eventFactory.js';
import { retryOnConflict } from './retryOnConflict.js';
import { retryPolicyFor } from './retryPolicy.js';

/** This process's read models: a write returns once they include it (read-your-writes). */
export interface AppliedView {
  waitForPosition(position: bigint): Promise<void>;
}

/** Where writes go: the store, the clock events carry, and the view writers wait for. */
export interface Journal {
  readonly store: EventStore;
  readonly now: () => Date;
  /** Null when nothing in this process folds what is written (a checkpointer on its own). */
  readonly view: AppliedView | null;
}

/** A stream folded for a decision: the state, and the revision an append must find to use it. */
export interface Loaded<S> {
  readonly state: S;
  /** `revision ?? 'no_stream'` for a folded stream (expectedAfter); `any` for appends that decide on nothing. */
  readonly expected: ExpectedRevision;
}

export interface WritePlan<S, E extends JournalEvent> {
  readonly stream: string;
  readonly context: OperationContext;
  /**
   * Folds what the decision needs. Called before every try; `afterConflict` is true after a lost
   * race (drop what is remembered and read again).
   */
  readonly load: (afterConflict: boolean) => Promise<Loaded<S>>;
  /** The first try's state, when the caller has just loaded it (its own checks ran on it). */
  readonly initial?: Loaded<S>;
  /**
   * The events, given the state and the time they will carry; none: nothing is written. A throw
   * (a refused command) writes nothing.
   */
  readonly decide: (state: S, now: Date) => readonly E[] | Promise<readonly E[]>;
  /**
   * Work between deciding and appending: new keys' wrapped material is written before the
   * lifecycle event that introduces them, so a reader that sees a key can always find it. A
   * throw writes no event; a lost race after it leaves only what it wrote, unreferenced.
   */
  readonly beforeAppend?: (events: readonly E[], state: S, now: Date) => Promise<void>;
  /** Event ids in place of the default one per (correlation, stream, expected revision, index). */
  readonly eventIds?: (events: readonly E[]) => readonly string[];
  /**
   * Appends the stored events at `expected` (default: the journal's store.append). The
   * checkpointer builds its event around the hash chain's link here.
   */
  readonly append?: (events: readonly EventToAppend[], expected: ExpectedRevision) => Promise<AppendResult>;
  /**
   * Wait until the view includes the write (default true). False only for writes the caller
   * catches up on in bulk (a rewrap campaign waits once per batch, not once per key).
   */
  readonly waitForView?: boolean;
}

export interface Written<S, E extends JournalEvent> {
  /** What was decided on the try that stood (empty: nothing written). */
  readonly events: readonly E[];
  /** The state that decision was made against. */
  readonly state: S;
  /** The time the events carry. */
  readonly at: Date;
  /** The append, or null when nothing was decided. */
  readonly appended: AppendResult | null;
  /** Global position of the last event written, or null. */
  readonly position: bigint | null;
}

/** The revision an append must find after a fold that reached `revision` (null: an empty stream). */
export function expectedAfter(revision: bigint | null): ExpectedRevision {
  return revision ?? 'no_stream';
}

/**
 * The ledger's one write path: load → decide → (work) → append at the revision decided against →
 * wait until this process's view includes it; a lost optimistic-concurrency race (another writer
 * appended first) loads and decides again (retryOnConflict). Every event the ledger writes goes
 * through here, so a new writer gets retries, idempotent event ids and read-your-writes for free.
 */
export async function decideAndAppend<S, E extends JournalEvent>(
  journal: Journal,
  plan: WritePlan<S, E>,
): Promise<Written<S, E>> {
  let next: Loaded<S> | undefined = plan.initial;
  let afterConflict = false;
  return retryOnConflict(
    async () => {
      const loaded = next ?? (await plan.load(afterConflict));
      next = undefined;
      const at = journal.now();
      const events = await plan.decide(loaded.state, at);
      if (events.length === 0) return { events, state: loaded.state, at, appended: null, position: null };
      await plan.beforeAppend?.(events, loaded.state, at);
      const { expected } = loaded;
      let stored = toStoredEvents(events, plan.context, plan.stream, expected, at);
      const ids = plan.eventIds?.(events);
      if (ids !== undefined)
        stored = stored.map((event, i) => ({ ...event, eventId: ids[i] ?? event.eventId }));
      const appended =
        plan.append === undefined
          ? await journal.store.append(plan.stream, stored, expected)
          : await plan.append(stored, expected);
      if (plan.waitForView !== false) await journal.view?.waitForPosition(appended.position);
      return { events, state: loaded.state, at, appended, position: appended.position };
    },
    async () => {
      afterConflict = true;
    },
    retryPolicyFor(journal.store),
  );
}

/**
 * Appends events that decide on nothing (expected revision `any`): cache-eviction requests, a new
 * key's wrapped material. Through decideAndAppend all the same, so they are stored, identified and
 * waited for like every other write.
 */
export async function appendEvents<E extends JournalEvent>(
  journal: Journal,
  write: {
    readonly stream: string;
    readonly context: OperationContext;
    readonly events: readonly E[];
    readonly eventIds?: (events: readonly E[]) => readonly string[];
    readonly waitForView?: boolean;
  },
): Promise<Written<null, E>> {
  return decideAndAppend(journal, {
    ...write,
    load: async () => ({ state: null, expected: 'any' }),
    decide: () => write.events,
  });
}
