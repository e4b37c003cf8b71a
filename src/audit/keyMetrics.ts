import { KeyledgerError } from '../domain/errors.js';
import { type LedgerEvent, SCOPE_EVENT_TYPES, type ScopeEvent } from '../domain/events.js';
import { keyScope, type ScopeKey, scopeKey } from '../domain/identities.js';
import { KEY_STATES, type KeyState } from '../domain/keyState.js';
import { emptyScopeState, evolveScope, type ScopeState } from '../domain/scopeState.js';

/**
 * Key-management metrics over time, for plotting (docs/audit.md): per UTC day, how many keys were
 * in each state at the end of the day and which transitions happened that day. A pure fold over
 * the ledger's events in position order.
 *
 * An event counts on the day of the latest `occurredAt` up to it (position order), the same time
 * order as-of queries use: so a day's counts are exactly the as-of view at the end of that day.
 */

export type KeyStateCounts = Readonly<Record<KeyState, number>>;

export interface DayMetrics {
  /** YYYY-MM-DD, UTC. */
  readonly date: string;
  /** Keys in each state at the end of the day. */
  readonly keys: KeyStateCounts;
  /** Transitions that day, as `FROM->TO` (`NEW->ACTIVE` for a key entering the ledger), sorted. */
  readonly transitions: Readonly<Record<string, number>>;
  /** Lifecycle events that day. */
  readonly events: number;
}

export interface KeyMetrics {
  /** The first and last day reported (null when there is nothing to report). */
  readonly since: string | null;
  readonly until: string | null;
  /** Every day from `since` to `until`, days without events included. */
  readonly days: readonly DayMetrics[];
}

export interface KeyMetricsRange {
  /** First day to report (its UTC day); default: the day of the first lifecycle event. */
  readonly since?: Date;
  /** Last day to report; default: the day of the last lifecycle event. */
  readonly until?: Date;
}

const DAY_MS = 86_400_000;
/** A hundred years of days: a plot needs no more, and a typo in a year should not build millions. */
export const MAX_METRICS_DAYS = 36_525;

const scopeEventTypes: ReadonlySet<string> = new Set(SCOPE_EVENT_TYPES);

function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function dateOf(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

function zeroCounts(): Record<KeyState, number> {
  return Object.fromEntries(KEY_STATES.map((s) => [s, 0])) as Record<KeyState, number>;
}

function checkedDay(value: Date | undefined, name: string): number | null {
  if (value === undefined) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime()))
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${name} must be a valid date`, {});
  return dayOf(value.getTime());
}

interface DayTally {
  readonly transitions: Map<string, number>;
  events: number;
}

/** A metrics fold fed one event at a time, so a whole ledger need not be held in memory. */
export interface KeyMetricsFold {
  /** Folds the next event; false once the events have passed `until` (the rest can be skipped). */
  add(event: LedgerEvent): boolean;
  result(): KeyMetrics;
}

/**
 * The metrics of `range` over events fed in position order (a ledger's, or one scope's;
 * non-lifecycle events are skipped). Events before `since` still count towards the states; events
 * after `until` are ignored. Errors: ERR_INVALID_ARGUMENT for an invalid date, `since` after
 * `until`, or a range longer than MAX_METRICS_DAYS.
 */
export function keyMetricsFold(range: KeyMetricsRange = {}): KeyMetricsFold {
  const sinceDay = checkedDay(range.since, 'since');
  const untilDay = checkedDay(range.until, 'until');
  if (sinceDay !== null && untilDay !== null) checkSpan(sinceDay, untilDay);
  const scopes = new Map<ScopeKey, ScopeState>();
  const counts = zeroCounts();
  /** Counts at the end of each day that had events, and that day's tally. */
  const endOfDay = new Map<number, { readonly keys: KeyStateCounts; readonly tally: DayTally }>();
  let maxOccurredAt = Number.NEGATIVE_INFINITY;
  let firstDay: number | null = null;
  let lastDay: number | null = null;
  let tally: DayTally = { transitions: new Map(), events: 0 };
  let done = false;
  return {
    add(event) {
      if (done) return false;
      if (!scopeEventTypes.has(event.type)) return true;
      maxOccurredAt = Math.max(maxOccurredAt, Date.parse(event.meta.occurredAt));
      const day = dayOf(maxOccurredAt);
      if (untilDay !== null && day > untilDay) {
        done = true;
        return false;
      }
      if (lastDay !== null && day !== lastDay) {
        endOfDay.set(lastDay, { keys: { ...counts }, tally });
        tally = { transitions: new Map(), events: 0 };
      }
      firstDay ??= day;
      lastDay = day;
      tally.events++;
      applyEvent(scopes, counts, tally.transitions, event as ScopeEvent & LedgerEvent);
      return true;
    },
    result() {
      const days = new Map(endOfDay);
      if (lastDay !== null) days.set(lastDay, { keys: { ...counts }, tally });
      const from = sinceDay ?? firstDay;
      const to = untilDay ?? lastDay;
      if (from === null || to === null) return { since: null, until: null, days: [] };
      checkSpan(from, to);
      return { since: dateOf(from), until: dateOf(to), days: daysBetween(from, to, days) };
    },
  };
}

/** keyMetricsFold over a list (or any iterable) of events. */
export function keyMetrics(events: Iterable<LedgerEvent>, range: KeyMetricsRange = {}): KeyMetrics {
  const fold = keyMetricsFold(range);
  for (const event of events) if (!fold.add(event)) break;
  return fold.result();
}

function checkSpan(from: number, to: number): void {
  if (from > to) throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'since is after until', {});
  if (to - from + 1 > MAX_METRICS_DAYS) {
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      `at most ${MAX_METRICS_DAYS} days can be reported at once`,
      {
        days: to - from + 1,
      },
    );
  }
}

function applyEvent(
  scopes: Map<ScopeKey, ScopeState>,
  counts: Record<KeyState, number>,
  transitions: Map<string, number>,
  event: ScopeEvent & LedgerEvent,
): void {
  const scope = keyScope(event.data.custodian, event.data.namespace);
  const sk = scopeKey(scope);
  const before = scopes.get(sk) ?? emptyScopeState(scope);
  const after = evolveScope(before, event, event.meta.occurredAt, event.revision);
  scopes.set(sk, after);
  if (after.keys === before.keys) return;
  for (const key of after.keys.values()) {
    const from = before.keys.get(key.keyId)?.state ?? null;
    if (from === key.state) continue;
    if (from !== null) counts[from]--;
    counts[key.state]++;
    const name = `${from ?? 'NEW'}->${key.state}`;
    transitions.set(name, (transitions.get(name) ?? 0) + 1);
  }
}

function daysBetween(
  from: number,
  to: number,
  endOfDay: ReadonlyMap<number, { readonly keys: KeyStateCounts; readonly tally: DayTally }>,
): DayMetrics[] {
  // The counts carried into `from`: the end of the latest day with events before it.
  let carried: KeyStateCounts = zeroCounts();
  let latest = Number.NEGATIVE_INFINITY;
  for (const [day, entry] of endOfDay) {
    if (day < from && day > latest) {
      latest = day;
      carried = entry.keys;
    }
  }
  const days: DayMetrics[] = [];
  for (let day = from; day <= to; day++) {
    const entry = endOfDay.get(day);
    if (entry !== undefined) carried = entry.keys;
    const transitions =
      entry === undefined ? [] : [...entry.tally.transitions].sort(([a], [b]) => (a < b ? -1 : 1));
    days.push({
      date: dateOf(day),
      keys: carried,
      transitions: Object.fromEntries(transitions),
      events: entry?.tally.events ?? 0,
    });
  }
  return days;
}
