import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyKeymetaView, evolveKeymeta } from '../../projections/keymeta.js';
import { keyMetrics, keyMetricsFold, MAX_METRICS_DAYS } from '../../src/audit/keyMetrics.js';
import type { DomainEvent, LedgerEvent } from '../../src/domain/events.js';
import { KEY_STATES, type KeyState } from '../../src/domain/keyState.js';
import {
  enabled,
  keyDisabled,
  keyReenabled,
  managementDisabled,
  OTHER_SCOPE,
  refreshed,
  rotated,
  SCOPE,
} from '../helpers/domainFixtures.js';

/** A stored-and-parsed event at `occurredAt`, positions in the order given. */
function history(...steps: readonly [string, DomainEvent][]): LedgerEvent[] {
  const revisions = new Map<string, bigint>();
  return steps.map(([occurredAt, event], i) => {
    const stream =
      'custodian' in event.data ? `kl-scope-${event.data.custodian}.${event.data.namespace}` : 'kl-system';
    const revision = revisions.get(stream) ?? 0n;
    revisions.set(stream, revision + 1n);
    return {
      ...event,
      meta: {
        schemaVersion: 1,
        actor: 'test',
        reason: null,
        correlationId: `c${i}`,
        causationId: null,
        occurredAt,
      },
      streamName: stream,
      revision,
      position: BigInt(i + 1),
    } as LedgerEvent;
  });
}

function counts(partial: Partial<Record<KeyState, number>>): Record<KeyState, number> {
  return Object.fromEntries(KEY_STATES.map((s) => [s, partial[s] ?? 0])) as Record<KeyState, number>;
}

const systemKey: DomainEvent = {
  type: 'SystemKeyRecorded',
  data: {
    sequence: 1,
    identity: '0123456789abcdef',
    metadata: '{"KeyAlias":"stk"}',
    metadataHash: 'A'.repeat(43) as never,
    previousIdentity: null,
  },
};

describe('key metrics', () => {
  it('count keys per state at the end of each day and the transitions of each day, days without events included', () => {
    const events = history(
      ['2026-03-01T08:00:00.000Z', systemKey],
      ['2026-03-01T09:00:00.000Z', enabled(SCOPE, 'k1')],
      ['2026-03-01T10:00:00.000Z', rotated(SCOPE, 'k2', 'k1')],
      ['2026-03-01T11:00:00.000Z', enabled(OTHER_SCOPE, 'o1')],
      ['2026-03-03T09:00:00.000Z', keyDisabled(SCOPE, 'k1', 'INACTIVE')],
      ['2026-03-03T23:59:59.999Z', refreshed(SCOPE, 'k2', 'ACTIVE', 'ACTIVE', 'ACTIVE')],
      ['2026-03-04T00:00:00.000Z', keyReenabled(SCOPE, 'k1')],
    );
    const metrics = keyMetrics(events);
    assert.equal(metrics.since, '2026-03-01');
    assert.equal(metrics.until, '2026-03-04');
    assert.deepEqual(metrics.days, [
      {
        date: '2026-03-01',
        keys: counts({ ACTIVE: 2, INACTIVE: 1 }),
        transitions: { 'ACTIVE->INACTIVE': 1, 'NEW->ACTIVE': 3 },
        events: 3,
      },
      { date: '2026-03-02', keys: counts({ ACTIVE: 2, INACTIVE: 1 }), transitions: {}, events: 0 },
      {
        date: '2026-03-03',
        keys: counts({ ACTIVE: 2, DISABLED: 1 }),
        transitions: { 'INACTIVE->DISABLED': 1 },
        events: 2,
      },
      {
        date: '2026-03-04',
        keys: counts({ ACTIVE: 2, INACTIVE: 1 }),
        transitions: { 'DISABLED->INACTIVE': 1 },
        events: 1,
      },
    ]);
  });

  it('a window carries the states from before it and stops at its last day', () => {
    const events = history(
      ['2026-03-01T09:00:00.000Z', enabled(SCOPE, 'k1')],
      ['2026-03-02T09:00:00.000Z', rotated(SCOPE, 'k2', 'k1')],
      ['2026-03-05T09:00:00.000Z', managementDisabled(SCOPE, 'k2')],
    );
    const metrics = keyMetrics(events, {
      since: new Date('2026-03-03T12:00:00Z'),
      until: new Date('2026-03-04T00:00:00Z'),
    });
    assert.deepEqual(
      metrics.days.map((d) => [d.date, d.keys.ACTIVE, d.keys.INACTIVE, d.events]),
      [
        ['2026-03-03', 1, 1, 0],
        ['2026-03-04', 1, 1, 0],
      ],
    );
    // The fold says when the rest of the events can be skipped.
    const fold = keyMetricsFold({ until: new Date('2026-03-02T00:00:00Z') });
    assert.deepEqual(
      events.map((e) => fold.add(e)),
      [true, true, false],
    );
    assert.deepEqual(
      fold.result().days.map((d) => d.date),
      ['2026-03-01', '2026-03-02'],
    );
  });

  it('an event whose clock went back counts on the latest day seen so far (position order)', () => {
    const events = history(
      ['2026-03-01T23:00:00.000Z', enabled(SCOPE, 'k1')],
      ['2026-03-02T00:00:01.000Z', enabled(OTHER_SCOPE, 'o1')],
      // Written after the event above, by a writer whose clock is a little behind.
      ['2026-03-01T23:59:59.000Z', rotated(SCOPE, 'k2', 'k1')],
    );
    const metrics = keyMetrics(events);
    assert.deepEqual(
      metrics.days.map((d) => [d.date, d.events, d.transitions]),
      [
        ['2026-03-01', 1, { 'NEW->ACTIVE': 1 }],
        ['2026-03-02', 2, { 'ACTIVE->INACTIVE': 1, 'NEW->ACTIVE': 2 }],
      ],
    );
  });

  it("a day's counts are the states of the keymeta view replayed up to the end of that day", () => {
    const events = history(
      ['2026-05-01T10:00:00.000Z', enabled(SCOPE, 'k1')],
      ['2026-05-01T12:00:00.000Z', enabled(OTHER_SCOPE, 'o1')],
      ['2026-05-02T10:00:00.000Z', rotated(SCOPE, 'k2', 'k1')],
      ['2026-05-02T09:00:00.000Z', keyDisabled(SCOPE, 'k1', 'INACTIVE')],
      ['2026-05-04T10:00:00.000Z', managementDisabled(OTHER_SCOPE, 'o1')],
      ['2026-05-04T11:00:00.000Z', refreshed(SCOPE, 'k2', 'ACTIVE', 'INACTIVE', 'INACTIVE')],
    );
    for (const day of keyMetrics(events).days) {
      const end = Date.parse(`${day.date}T23:59:59.999Z`);
      const view = emptyKeymetaView();
      for (const event of events) {
        if (Date.parse(event.meta.occurredAt) > end) break;
        evolveKeymeta(view, event);
      }
      const expected = counts({});
      for (const scope of view.scopes.values()) for (const key of scope.keys.values()) expected[key.state]++;
      assert.deepEqual(day.keys, expected, day.date);
    }
  });

  it('has nothing to report without lifecycle events, unless a window is asked for', () => {
    assert.deepEqual(keyMetrics([]), { since: null, until: null, days: [] });
    assert.deepEqual(keyMetrics(history(['2026-03-01T08:00:00.000Z', systemKey])), {
      since: null,
      until: null,
      days: [],
    });
    const window = keyMetrics([], {
      since: new Date('2026-01-01T00:00:00Z'),
      until: new Date('2026-01-02T00:00:00Z'),
    });
    assert.deepEqual(
      window.days.map((d) => [d.date, d.keys, d.events]),
      [
        ['2026-01-01', counts({}), 0],
        ['2026-01-02', counts({}), 0],
      ],
    );
  });

  it('refuses an invalid date, since after until, and a range longer than MAX_METRICS_DAYS', () => {
    const events = history(['2026-03-01T09:00:00.000Z', enabled(SCOPE, 'k1')]);
    const bad = (range: Parameters<typeof keyMetrics>[1]) =>
      assert.throws(
        () => keyMetrics(events, range),
        (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT',
      );
    bad({ since: new Date(Number.NaN) });
    bad({ until: 'tomorrow' as never });
    bad({ since: new Date('2026-03-02T00:00:00Z'), until: new Date('2026-03-01T00:00:00Z') });
    bad({ since: new Date(0), until: new Date((MAX_METRICS_DAYS + 1) * 86_400_000) });
    // A default end far from an explicit start is too long as well.
    bad({ since: new Date('1900-01-01T00:00:00Z') });
  });
});
