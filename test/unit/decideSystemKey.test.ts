import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  emptySystemKeysView,
  evolveSystemKeys,
  systemKeysFromSnapshot,
  systemKeysToSnapshot,
} from '../../projections/systemKeys.js';
import {
  type DestroyFacts,
  decideDestroySystemKey,
  decideInitialise,
  decideRotateSystemKey,
  type LatestSystemKey,
  type SystemKeyFacts,
} from '../../src/domain/decideSystemKey.js';
import { type DomainEvent, eventDataSchemas, type LedgerEvent } from '../../src/domain/events.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { checksumFor, throwsCode } from '../helpers/domainFixtures.js';

/** The provider's system key under `alias` (its bytes named by `variant`). */
function systemKey(alias: string, variant = ''): SystemKeyFacts {
  const metadata = JSON.stringify({ KeyAlias: alias });
  return { identity: checksumFor(`stk:${alias}`, variant), metadata, metadataHash: metadataHashOf(metadata) };
}

/** What the systemKeys projection would say after these events. */
function latestAfter(events: readonly DomainEvent[]): LatestSystemKey | null {
  let latest: LatestSystemKey | null = null;
  for (const event of events) {
    if (event.type === 'SystemKeyRecorded' || event.type === 'SystemKeyRotated') {
      const { sequence, identity, metadataHash } = event.data;
      latest = { sequence, identity, metadataHash };
    }
  }
  return latest;
}

function assertStorable(events: readonly DomainEvent[]): void {
  for (const event of events) {
    const parsed = eventDataSchemas[event.type].safeParse(event.data);
    assert.ok(parsed.success, `${event.type} does not fit its schema: ${parsed.error?.message}`);
  }
}

describe('decideInitialise', () => {
  it('given an empty ledger, when initialised, then SystemKeyRecorded records the system key as sequence 1', () => {
    const stk = systemKey('stk1');
    const events = decideInitialise(null, stk);
    assert.deepEqual(events, [
      { type: 'SystemKeyRecorded', data: { sequence: 1, ...stk, previousIdentity: null } },
    ]);
    assertStorable(events);
    assert.deepEqual(latestAfter(events), {
      sequence: 1,
      identity: stk.identity,
      metadataHash: stk.metadataHash,
    });
  });

  it('given an initialised ledger, when initialised again, then ERR_LEDGER_ALREADY_INITIALISED', () => {
    const latest = latestAfter(decideInitialise(null, systemKey('stk1')));
    throwsCode(() => decideInitialise(latest, systemKey('stk1')), 'ERR_LEDGER_ALREADY_INITIALISED', {
      sequence: 1,
    });
    throwsCode(() => decideInitialise(latest, systemKey('stk2')), 'ERR_LEDGER_ALREADY_INITIALISED');
  });
});

describe('decideRotateSystemKey', () => {
  const first = systemKey('stk1');
  const initialised = latestAfter(decideInitialise(null, first));

  it('given no system key yet, when rotated, then ERR_LEDGER_NOT_INITIALISED', () => {
    throwsCode(() => decideRotateSystemKey(null, systemKey('stk1')), 'ERR_LEDGER_NOT_INITIALISED');
  });

  it('given the provider still has the same system key, when rotated, then nothing is recorded', () => {
    assert.deepEqual(decideRotateSystemKey(initialised, systemKey('stk1')), []);
  });

  it('given the provider has a system key with new metadata, when rotated, then SystemKeyRotated records it as sequence + 1 with the previous identity', () => {
    const next = systemKey('stk2');
    const events = decideRotateSystemKey(initialised, next);
    assert.deepEqual(events, [
      { type: 'SystemKeyRotated', data: { sequence: 2, ...next, previousIdentity: first.identity } },
    ]);
    assertStorable(events);
  });

  it('given several rotations, then sequences count up and each names the identity before it', () => {
    const history: DomainEvent[] = [...decideInitialise(null, first)];
    for (const alias of ['stk2', 'stk3', 'stk4']) {
      history.push(...decideRotateSystemKey(latestAfter(history), systemKey(alias)));
      assert.deepEqual(decideRotateSystemKey(latestAfter(history), systemKey(alias)), [], 'same key again');
    }
    assert.deepEqual(
      history.map((e) =>
        e.type === 'SystemKeyRecorded' || e.type === 'SystemKeyRotated'
          ? [e.type, e.data.sequence, e.data.previousIdentity]
          : e.type,
      ),
      [
        ['SystemKeyRecorded', 1, null],
        ['SystemKeyRotated', 2, systemKey('stk1').identity],
        ['SystemKeyRotated', 3, systemKey('stk2').identity],
        ['SystemKeyRotated', 4, systemKey('stk3').identity],
      ],
    );
  });

  it('given the provider has other bytes under the recorded metadata, when rotated, then ERR_PROVIDER_INVALID_ANSWER', () => {
    const replaced = systemKey('stk1', 'replaced');
    throwsCode(() => decideRotateSystemKey(initialised, replaced), 'ERR_PROVIDER_INVALID_ANSWER', {
      sequence: 1,
      recordedIdentity: first.identity,
      providerIdentity: replaced.identity,
    });
  });

  it('given the provider has the same bytes under new metadata, when rotated, then it is recorded (metadata decides)', () => {
    const renamed = { ...systemKey('stk-renamed'), identity: first.identity };
    const events = decideRotateSystemKey(initialised, renamed);
    assert.deepEqual(events, [
      { type: 'SystemKeyRotated', data: { sequence: 2, ...renamed, previousIdentity: first.identity } },
    ]);
  });
});

describe('decideDestroySystemKey', () => {
  const old = systemKey('stk1');
  const current = systemKey('stk2');
  const keys = (oldState: { retired: boolean; destroyed: boolean }): DestroyFacts['systemKeys'] => [
    { sequence: 1, identity: old.identity, metadata: old.metadata, ...oldState },
    { sequence: 2, identity: current.identity, metadata: current.metadata, retired: false, destroyed: false },
  ];

  it('given a retired system key, when destroyed, then SystemKeyDestroyed names it (identity, sequence, metadata)', () => {
    const events = decideDestroySystemKey({
      identity: old.identity,
      systemKeys: keys({ retired: true, destroyed: false }),
    });
    assert.deepEqual(events, [
      {
        type: 'SystemKeyDestroyed',
        data: { identity: old.identity, sequence: 1, metadata: old.metadata },
      },
    ]);
    assertStorable(events);
  });

  it('given a system key not retired (old or current), when destroyed, then ERR_SYSTEM_KEY_NOT_RETIRED', () => {
    throwsCode(
      () =>
        decideDestroySystemKey({
          identity: old.identity,
          systemKeys: keys({ retired: false, destroyed: false }),
        }),
      'ERR_SYSTEM_KEY_NOT_RETIRED',
      { identity: old.identity, sequence: 1 },
    );
    throwsCode(
      () =>
        decideDestroySystemKey({
          identity: current.identity,
          systemKeys: keys({ retired: true, destroyed: false }),
        }),
      'ERR_SYSTEM_KEY_NOT_RETIRED',
      { identity: current.identity, sequence: 2 },
    );
  });

  it('given an identity never recorded, when destroyed, then ERR_SYSTEM_KEY_NOT_FOUND', () => {
    throwsCode(
      () =>
        decideDestroySystemKey({
          identity: systemKey('never').identity,
          systemKeys: keys({ retired: true, destroyed: false }),
        }),
      'ERR_SYSTEM_KEY_NOT_FOUND',
    );
  });

  it('given a key recorded as destroyed already, when destroyed again, then nothing (a re-run is harmless)', () => {
    assert.deepEqual(
      decideDestroySystemKey({
        identity: old.identity,
        systemKeys: keys({ retired: true, destroyed: true }),
      }),
      [],
    );
  });
});

describe('the systemKeys projection and SystemKeyDestroyed', () => {
  it('marks the key destroyed at the event time, keeps it listed, and survives a snapshot', () => {
    const meta = (occurredAt: string) => ({
      schemaVersion: 1,
      actor: 'admin',
      reason: 'token clean-up',
      correlationId: 'c',
      causationId: null,
      occurredAt,
    });
    const stk = systemKey('stk1');
    const at = (position: number, event: DomainEvent, occurredAt: string): LedgerEvent =>
      ({
        ...event,
        eventId: `00000000-0000-4000-8000-00000000000${position}`,
        streamName: 'kl-system',
        revision: BigInt(position - 1),
        position: BigInt(position),
        meta: meta(occurredAt),
      }) as unknown as LedgerEvent;
    let view = emptySystemKeysView();
    for (const event of [
      at(
        1,
        { type: 'SystemKeyRecorded', data: { sequence: 1, ...stk, previousIdentity: null } },
        '2026-12-01T00:00:00.000Z',
      ),
      at(
        2,
        { type: 'SystemKeyRetired', data: { identity: stk.identity, sequence: 1 } },
        '2026-12-02T00:00:00.000Z',
      ),
      at(
        3,
        { type: 'SystemKeyDestroyed', data: { identity: stk.identity, sequence: 1, metadata: stk.metadata } },
        '2026-12-03T00:00:00.000Z',
      ),
    ]) {
      view = evolveSystemKeys(view, event);
    }
    assert.equal(view.keys.length, 1);
    assert.equal(view.keys[0]?.retiredAt, '2026-12-02T00:00:00.000Z');
    assert.equal(view.keys[0]?.destroyedAt, '2026-12-03T00:00:00.000Z');
    const restored = systemKeysFromSnapshot(systemKeysToSnapshot(view), view.position);
    assert.deepEqual(restored?.keys, view.keys);
  });
});
