import { z } from 'zod';
import { emptyKeymetaView, evolveKeymeta, type KeymetaView, scopeOf } from '../../projections/keymeta.js';
import { KeymetaReplay } from '../../projections/keymetaReplay.js';
import { keymetaFromSnapshot } from '../../projections/keymetaSnapshot.js';
import { KeyledgerError } from '../domain/errors.js';
import { type LedgerEvent, parseEventOf, parseLedgerEvent, SCOPE_EVENT_TYPES } from '../domain/events.js';
import type { KeyId, KeyScope, ScopeKey } from '../domain/identities.js';
import type { ScopeState } from '../domain/scopeState.js';
import { asOfSnapshotName } from '../journal/streamNames.js';
import type { EventStore, JsonValue } from '../store/eventStore.js';
import { isAsOfRowsBody, loadAsOfRows } from './asOfRows.js';
import { type AsOfMark, loadAsOfIndex } from './asOfSnapshots.js';
import type { CheckpointMacKeys } from './checkpointMacKeys.js';
import { scopeNotFound } from './history.js';
import { UndecodableRow } from './lazyScopes.js';
import { checkSnapshot, type SnapshotRejection } from './snapshotSeal.js';

/**
 * As-of queries: the keymeta view as it was at a global position or at a time (docs/audit.md).
 *
 * The ledger's order is the position order. A position `p` selects the events at or below `p`. A
 * time `t` selects the longest run of events from the start that all occurred at or before `t`:
 * the view stops before the first event (by position) whose `occurredAt` is later than `t`. With
 * clocks that never go back the two readings agree ("every event up to `t`"); when two writers'
 * times interleave, this one still yields a prefix of the ledger, the only kind of view the
 * ledger ever had.
 */

/** A global position (bigint) or a time (Date). */
export type AsOfTarget = bigint | Date;

export interface KeymetaAsOf {
  /** The target asked for. */
  readonly target: AsOfTarget;
  /**
   * Every event of the ledger at or below this position is in the view, none above it: the target
   * itself, or for a time the position of the last event it includes.
   */
  readonly position: bigint;
  readonly scopes: ReadonlyMap<ScopeKey, ScopeState>;
}

/** One scope's fold at a moment (the Ledger turns it into the public ScopeStatusAsOf). */
export interface ScopeFoldAsOf {
  readonly target: AsOfTarget;
  /** As in KeymetaAsOf. */
  readonly position: bigint;
  /** The scope's fold at that point (no marker and no keys: nothing had happened in it yet). */
  readonly state: ScopeState;
}

export interface AsOfStreams {
  readonly prefix: string;
  scope(scope: KeyScope): string;
  material(keyId: KeyId): string;
}

const ISO_DATETIME = z.iso.datetime({ offset: true });

/**
 * Parses the CLI's `--at`: digits are a global position, anything else an ISO 8601 date-time with
 * a zone (`Z` or an offset). A bare date is refused: whether it means the start or the end of that
 * day (and in which zone) would be a guess.
 */
export function parseAsOf(text: string): AsOfTarget {
  if (/^\d{1,20}$/.test(text)) return BigInt(text);
  if (ISO_DATETIME.safeParse(text).success) return new Date(text);
  throw new KeyledgerError(
    'ERR_INVALID_AS_OF',
    'as-of must be a global position (digits) or an ISO 8601 date-time with a zone, e.g. 2026-11-24T09:14:00Z',
    { at: text.slice(0, 64) },
  );
}

function describe(target: AsOfTarget): string {
  return typeof target === 'bigint' ? `position ${target}` : target.toISOString();
}

/** Checks the target's type and range against the ledger: after its first event, not after now. */
async function checkTarget(store: EventStore, prefix: string, target: AsOfTarget, now: Date): Promise<void> {
  if (typeof target === 'bigint') {
    if (target < 0n) throw new KeyledgerError('ERR_INVALID_AS_OF', 'a position is never negative', {});
  } else if (!(target instanceof Date) || Number.isNaN(target.getTime())) {
    throw new KeyledgerError('ERR_INVALID_AS_OF', 'as-of must be a bigint position or a valid Date', {});
  }
  const future = () =>
    new KeyledgerError('ERR_AS_OF_IN_FUTURE', `${describe(target)} is in the future of the ledger`, {
      at: describe(target),
    });
  if (typeof target === 'bigint' ? target > (await store.headPosition()) : target.getTime() > now.getTime())
    throw future();
  let first: LedgerEvent | undefined;
  for await (const recorded of store.readAll({ streamPrefix: prefix, maxCount: 1 })) {
    first = parseLedgerEvent(recorded);
  }
  const before =
    first === undefined ||
    (typeof target === 'bigint'
      ? target < first.position
      : target.getTime() < Date.parse(first.meta.occurredAt));
  if (before) {
    throw new KeyledgerError(
      'ERR_AS_OF_BEFORE_LEDGER',
      first === undefined
        ? 'the ledger has no events yet'
        : `${describe(target)} is before the ledger's first event (position ${first.position}, ${first.meta.occurredAt})`,
      { at: describe(target) },
    );
  }
}

/** Whether the events up to `mark` all belong to the view at `target`. */
function markWithin(mark: AsOfMark, target: AsOfTarget): boolean {
  return typeof target === 'bigint' ? mark.position <= target : mark.maxOccurredAt <= target.getTime();
}

/** Whether `event` (the next in position order) still belongs to the view at `target`. */
function eventWithin(event: LedgerEvent, target: AsOfTarget): boolean {
  return typeof target === 'bigint'
    ? event.position <= target
    : Date.parse(event.meta.occurredAt) <= target.getTime();
}

/** How as-of queries check the historic snapshots they start from (src/audit/snapshotSeal.ts). */
export interface AsOfSnapshotCheck {
  /** The system keys' MAC keys under the snapshot label. */
  readonly keys: CheckpointMacKeys;
  /** Told of every snapshot that is skipped because its seal fails (or it has none). */
  readonly reject: (rejection: SnapshotRejection) => void;
}

/** A starting view, and for a row-form historic snapshot the check of its rows (run after the replay). */
interface Start {
  readonly view: KeymetaView;
  readonly rows: {
    readonly matches: () => Promise<boolean>;
    readonly rejection: SnapshotRejection;
  } | null;
}

/**
 * The historic snapshots usable for `target`, latest first (loaded and checked one at a time by
 * the caller, which moves to the next when one fails), then the empty view.
 */
async function* startingViews(
  store: EventStore,
  prefix: string,
  target: AsOfTarget,
  check: AsOfSnapshotCheck,
): AsyncGenerator<Start> {
  const marks = (await loadAsOfIndex(store, prefix)).filter((m) => m.snapshot && markWithin(m, target));
  const head = await store.headPosition();
  for (let i = marks.length - 1; i >= 0; i--) {
    const mark = marks[i] as AsOfMark;
    const name = asOfSnapshotName(prefix, mark.position);
    const snapshot = await store.loadSnapshot(name);
    // A snapshot gone, of an older format or failing its seal is skipped for the one before it.
    if (snapshot === null || snapshot.position !== mark.position) continue;
    const checked = await checkSnapshot(store, prefix, name, snapshot, check.keys, head);
    if (!checked.ok) {
      check.reject(checked.rejection);
      continue;
    }
    if (isAsOfRowsBody(checked.body)) {
      const loaded = await loadAsOfRows(store, prefix, checked.body, snapshot.position, check.keys);
      const rejection: SnapshotRejection = {
        snapshot: name,
        position: snapshot.position,
        kind: 'snapshot-rows-mismatch',
        message: 'its rows do not add up to the digest its sealed header holds',
      };
      if (loaded.kind === 'mismatch') check.reject(rejection);
      if (loaded.kind !== 'loaded') continue;
      yield { view: loaded.view, rows: { matches: loaded.matches, rejection } };
      continue;
    }
    // The document form (written before the row form; still accepted).
    const view = keymetaFromSnapshot(checked.body as JsonValue, snapshot.position);
    if (view !== null) yield { view, rows: null };
  }
  yield { view: emptyKeymetaView(), rows: null };
}

/** The replay from `start` to `target`; null if a row of the starting view did not decode. */
async function replayTo(store: EventStore, prefix: string, start: KeymetaView, target: AsOfTarget) {
  // The starting view is this query's own (loaded or empty): the replay works on it in place and
  // hands it out once, at the answer.
  const replay = new KeymetaReplay(start);
  try {
    for await (const recorded of store.readAll({ after: replay.position, streamPrefix: prefix })) {
      if (typeof target === 'bigint' && recorded.position > target) break;
      const event = parseLedgerEvent(recorded);
      if (!eventWithin(event, target)) break;
      replay.apply(event);
    }
  } catch (error) {
    if (error instanceof UndecodableRow) return null;
    throw error;
  }
  return replay.view();
}

/**
 * The keymeta view of the whole ledger at `target`: the latest historic snapshot within it, then
 * the events after it up to the target. A row-form snapshot's rows are hashed while the replay
 * runs, and its answer is used only if they add up to the sealed digest (else the query starts
 * again from the snapshot before it). Errors: ERR_INVALID_AS_OF, ERR_AS_OF_IN_FUTURE (a position
 * past the store's head, a time after `now`), ERR_AS_OF_BEFORE_LEDGER (before the ledger's first
 * event, or an empty ledger).
 */
export async function keymetaAsOf(
  store: EventStore,
  prefix: string,
  target: AsOfTarget,
  now: Date,
  check: AsOfSnapshotCheck,
): Promise<KeymetaAsOf> {
  await checkTarget(store, prefix, target, now);
  for await (const start of startingViews(store, prefix, target, check)) {
    let view: KeymetaView | null;
    try {
      view = await replayTo(store, prefix, start.view, target);
    } catch (error) {
      // The row check's worker is stopped either way.
      await start.rows?.matches().catch(() => false);
      throw error;
    }
    if (start.rows !== null) {
      const matched = await start.rows.matches();
      if (view === null || !matched) {
        check.reject(start.rows.rejection);
        continue;
      }
    }
    if (view === null) continue;
    return { target, position: typeof target === 'bigint' ? target : view.position, scopes: view.scopes };
  }
  // startingViews always ends with the empty view, whose replay cannot fail.
  throw new KeyledgerError('ERR_INTERNAL', 'no starting view for an as-of query', {});
}

/**
 * The position a time selects (see the module comment): from the latest mark within it, the
 * events up to the first that occurred later.
 */
async function positionAt(store: EventStore, prefix: string, time: Date): Promise<bigint> {
  const marks = (await loadAsOfIndex(store, prefix)).filter((m) => markWithin(m, time));
  let position = marks[marks.length - 1]?.position ?? 0n;
  for await (const recorded of store.readAll({ after: position, streamPrefix: prefix })) {
    const event = parseLedgerEvent(recorded);
    if (!eventWithin(event, time)) break;
    position = event.position;
  }
  return position;
}

/**
 * One scope at `target`, from its own streams: the scope's events and its keys' material events
 * up to the target's position, folded as the keymeta view folds them, so the answer is the whole
 * view's entry for the scope without replaying other scopes. A time is turned into a position
 * first (positionAt). A scope with no events at all is ERR_SCOPE_NOT_FOUND; one whose first event
 * came after the target answers with its empty state.
 */
export async function scopeAsOf(
  store: EventStore,
  streams: AsOfStreams,
  scope: KeyScope,
  target: AsOfTarget,
  now: Date,
): Promise<ScopeFoldAsOf> {
  const scopeEvents = (await store.readStream(streams.scope(scope))).map((e) =>
    parseEventOf(e, SCOPE_EVENT_TYPES),
  );
  if (scopeEvents.length === 0) throw scopeNotFound(scope);
  await checkTarget(store, streams.prefix, target, now);
  const upTo = typeof target === 'bigint' ? target : await positionAt(store, streams.prefix, target);
  const lifecycle = scopeEvents.filter((e) => e.position <= upTo);
  const keyIds = new Set<KeyId>();
  for (const event of lifecycle) if ('key' in event.data) keyIds.add(event.data.key.keyId);
  const events: LedgerEvent[] = [...lifecycle];
  for (const keyId of keyIds) {
    for (const recorded of await store.readStream(streams.material(keyId))) {
      if (recorded.position > upTo) break;
      events.push(parseEventOf(recorded, ['KeyMaterialWrapped']));
    }
  }
  events.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
  const view = emptyKeymetaView();
  for (const event of events) evolveKeymeta(view, event);
  return { target, position: upTo, state: scopeOf(view, scope) };
}
