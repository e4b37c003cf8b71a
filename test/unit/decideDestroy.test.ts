import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  assertGracePeriod,
  DEFAULT_DESTROY_GRACE_MS,
  type DestroyCommand,
  decideDestroy,
  dueDestructions,
  MAX_DESTROY_GRACE_MS,
  type MaterialCopy,
  type MaterialReceipt,
  materialHashOf,
} from '../../src/domain/decideDestroy.js';
import { planRefresh } from '../../src/domain/decideRefresh.js';
import { decideScope } from '../../src/domain/decideScope.js';
import { type EventOf, eventDataSchemas, type ScopeEvent } from '../../src/domain/events.js';
import type { KeyId } from '../../src/domain/identities.js';
import { DESTROYABLE_KEY_STATES, KEY_STATES, KEY_TRANSITIONS } from '../../src/domain/keyState.js';
import { emptyScopeState, type ScopeState } from '../../src/domain/scopeState.js';
import {
  activeAnswer,
  at,
  enabled,
  enableFailed,
  foldOnto,
  givenEvents,
  hashFor,
  inactiveAnswer,
  keyDisabled,
  keyIdFor,
  managementDisabled,
  refreshed,
  rotated,
  SCOPE,
  stateOf,
  throwsCode,
  when,
} from '../helpers/domainFixtures.js';

/**
 * Crypto-shredding, given/when/then: given the events of a scope, when a destroy command is
 * decided, then these events (folded back, this state) or this error. Keys are named k1, k2, …
 */

const S = SCOPE;
const DAY = 86_400_000;
/** A fixed "now", after every at(n) the fixtures use. */
const NOW = new Date(Date.UTC(2025, 1, 1));

const MATERIAL: MaterialReceipt = {
  materialStream: 'kl-material-x',
  materialEvents: 1,
  materialHash: 'a'.repeat(64),
};

const schedule = (name: string, graceMs = 7 * DAY, now = NOW): DestroyCommand => ({
  type: 'ScheduleKeyDestruction',
  metadataHash: hashFor(S, name),
  now,
  graceMs,
});
const cancel = (name: string): DestroyCommand => ({
  type: 'CancelKeyDestruction',
  metadataHash: hashFor(S, name),
});
const destroyDue = (
  name: string,
  now: Date,
  material = MATERIAL,
  materialStkIdentity: string | null = null,
): DestroyCommand => ({
  type: 'DestroyDueKey',
  keyId: keyIdFor(S, name),
  now,
  material,
  materialStkIdentity,
});

function scheduled(
  name: string,
  state: 'INACTIVE' | 'DISABLED',
  dueAt: string,
): EventOf<'ManagedKeyDestructionScheduled'> {
  return { type: 'ManagedKeyDestructionScheduled', data: { ...S, keyId: keyIdFor(S, name), state, dueAt } };
}
function cancelled(name: string, dueAt: string): EventOf<'ManagedKeyDestructionCancelled'> {
  return { type: 'ManagedKeyDestructionCancelled', data: { ...S, keyId: keyIdFor(S, name), dueAt } };
}

/** k1 INACTIVE, k2 ACTIVE. */
function rotatedOnce(): ScopeState {
  return givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'));
}

/** Decides, checks the events against their stored schemas, and folds them in. */
function decideAndFold(
  state: ScopeState,
  command: DestroyCommand,
): { events: ScopeEvent[]; next: ScopeState } {
  const events = decideDestroy(state, command);
  for (const event of events) eventDataSchemas[event.type].parse(JSON.parse(JSON.stringify(event.data)));
  // decideScope hands destroy commands to decideDestroy: the admin's one entry point.
  assert.deepEqual(decideScope(state, command), events);
  return { events, next: foldOnto(state, events) };
}

function keyOf(state: ScopeState, name: string) {
  const key = state.keys.get(keyIdFor(S, name));
  assert.ok(key !== undefined, `key ${name}`);
  return key;
}

describe('destroyable states (keyState.ts)', () => {
  it('are exactly the states KEY_TRANSITIONS lets go to DESTROYED; ACTIVE is not one', () => {
    const toDestroyed = KEY_STATES.filter((s) => KEY_TRANSITIONS[s].includes('DESTROYED'));
    assert.deepEqual([...DESTROYABLE_KEY_STATES].sort(), [...toDestroyed].sort());
    assert.ok(!(DESTROYABLE_KEY_STATES as readonly string[]).includes('ACTIVE'));
  });
});

describe('ScheduleKeyDestruction', () => {
  it('given an INACTIVE key: scheduled at now + grace; the state stays INACTIVE', () => {
    const { events, next } = decideAndFold(rotatedOnce(), schedule('k1', 3 * DAY));
    assert.deepEqual(events, [scheduled('k1', 'INACTIVE', new Date(NOW.getTime() + 3 * DAY).toISOString())]);
    const key = keyOf(next, 'k1');
    assert.equal(key.state, 'INACTIVE');
    assert.deepEqual(key.destruction, {
      scheduledAt: at(3),
      dueAt: new Date(NOW.getTime() + 3 * DAY).toISOString(),
    });
    // Nothing else moves: k2 stays ACTIVE, no key changes state.
    assert.equal(next.activeKeyId, keyIdFor(S, 'k2'));
    assert.equal(keyOf(next, 'k1').updatedAt, keyOf(rotatedOnce(), 'k1').updatedAt);
  });

  it('given a DISABLED key: scheduled with state DISABLED', () => {
    const given = givenEvents(S, enabled(S, 'k1'), rotated(S, 'k2', 'k1'), keyDisabled(S, 'k1', 'INACTIVE'));
    const { events } = decideAndFold(given, schedule('k1'));
    assert.deepEqual(events, [scheduled('k1', 'DISABLED', new Date(NOW.getTime() + 7 * DAY).toISOString())]);
  });

  it('given a scope whose management was disabled: its (now INACTIVE) former ACTIVE key may be scheduled', () => {
    const given = givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1'));
    const { next } = decideAndFold(given, schedule('k1'));
    assert.equal(keyOf(next, 'k1').destruction?.dueAt, new Date(NOW.getTime() + 7 * DAY).toISOString());
  });

  it('a grace period of 0 makes it due at once; the maximum is accepted', () => {
    const zero = decideAndFold(rotatedOnce(), schedule('k1', 0));
    assert.equal(keyOf(zero.next, 'k1').destruction?.dueAt, NOW.toISOString());
    assert.deepEqual(
      dueDestructions(zero.next, NOW).map((k) => k.keyId),
      [keyIdFor(S, 'k1')],
    );
    const max = decideAndFold(rotatedOnce(), schedule('k1', MAX_DESTROY_GRACE_MS));
    assert.equal(
      keyOf(max.next, 'k1').destruction?.dueAt,
      new Date(NOW.getTime() + MAX_DESTROY_GRACE_MS).toISOString(),
    );
  });

  it('refuses the ACTIVE key with ERR_KEY_ACTIVE', () => {
    throwsCode(() => decideDestroy(rotatedOnce(), schedule('k2')), 'ERR_KEY_ACTIVE', {
      metadataHash: hashFor(S, 'k2'),
    });
  });

  it('refuses a key already scheduled with ERR_KEY_DESTRUCTION_SCHEDULED, naming the due time', () => {
    const dueAt = new Date(NOW.getTime() + DAY).toISOString();
    const given = foldOnto(rotatedOnce(), [scheduled('k1', 'INACTIVE', dueAt)]);
    throwsCode(() => decideDestroy(given, schedule('k1', 0)), 'ERR_KEY_DESTRUCTION_SCHEDULED', { dueAt });
  });

  it('refuses a DESTROYED key with ERR_KEY_DESTROYED', () => {
    const given = destroyedK1();
    throwsCode(() => decideDestroy(given, schedule('k1')), 'ERR_KEY_DESTROYED');
  });

  it('refuses an unknown key (ERR_KEY_NOT_FOUND) and an unknown scope (ERR_SCOPE_NOT_FOUND)', () => {
    throwsCode(() => decideDestroy(rotatedOnce(), schedule('k9')), 'ERR_KEY_NOT_FOUND', {
      metadataHash: hashFor(S, 'k9'),
    });
    throwsCode(() => decideDestroy(emptyScopeState(S), schedule('k1')), 'ERR_SCOPE_NOT_FOUND');
    // A scope with events but no key (a FAILED marker) is known: the key is what is missing.
    throwsCode(
      () => decideDestroy(givenEvents(S, enableFailed(S, 'FAILED')), schedule('k1')),
      'ERR_KEY_NOT_FOUND',
    );
  });

  for (const graceMs of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_DESTROY_GRACE_MS + 1]) {
    it(`refuses a grace period of ${graceMs} ms with ERR_INVALID_ARGUMENT`, () => {
      throwsCode(() => decideDestroy(rotatedOnce(), schedule('k1', graceMs)), 'ERR_INVALID_ARGUMENT');
      throwsCode(() => assertGracePeriod(graceMs), 'ERR_INVALID_ARGUMENT');
    });
  }

  it('the default grace period is 7 days', () => {
    assert.equal(DEFAULT_DESTROY_GRACE_MS, 7 * DAY);
  });
});

describe('CancelKeyDestruction', () => {
  const dueAt = new Date(NOW.getTime() + DAY).toISOString();

  it('given a scheduled key: cancelled, and the key is no longer scheduled', () => {
    const given = foldOnto(rotatedOnce(), [scheduled('k1', 'INACTIVE', dueAt)]);
    const { events, next } = decideAndFold(given, cancel('k1'));
    assert.deepEqual(events, [cancelled('k1', dueAt)]);
    assert.equal(keyOf(next, 'k1').destruction, null);
    assert.equal(stateOf(next, 'k1'), 'INACTIVE');
    assert.deepEqual(dueDestructions(next, new Date(Date.parse(dueAt) + DAY)), []);
  });

  it('a destruction that is due but has not run can still be cancelled', () => {
    const given = foldOnto(rotatedOnce(), [scheduled('k1', 'INACTIVE', NOW.toISOString())]);
    assert.equal(dueDestructions(given, NOW).length, 1);
    const { next } = decideAndFold(given, cancel('k1'));
    assert.deepEqual(dueDestructions(next, NOW), []);
  });

  it('refuses a key with nothing scheduled (ERR_KEY_DESTRUCTION_NOT_SCHEDULED), also after a cancel', () => {
    throwsCode(() => decideDestroy(rotatedOnce(), cancel('k1')), 'ERR_KEY_DESTRUCTION_NOT_SCHEDULED');
    const afterCancel = foldOnto(rotatedOnce(), [scheduled('k1', 'INACTIVE', dueAt), cancelled('k1', dueAt)]);
    throwsCode(() => decideDestroy(afterCancel, cancel('k1')), 'ERR_KEY_DESTRUCTION_NOT_SCHEDULED');
  });

  it('refuses a destruction that already ran with ERR_KEY_DESTROYED', () => {
    throwsCode(() => decideDestroy(destroyedK1(), cancel('k1')), 'ERR_KEY_DESTROYED');
  });

  it('refuses an unknown key and an unknown scope', () => {
    throwsCode(() => decideDestroy(rotatedOnce(), cancel('k9')), 'ERR_KEY_NOT_FOUND');
    throwsCode(() => decideDestroy(emptyScopeState(S), cancel('k1')), 'ERR_SCOPE_NOT_FOUND');
  });
});

/** k1 scheduled (INACTIVE) for NOW + 1 day, then destroyed. */
function destroyedK1(): ScopeState {
  const dueAt = new Date(NOW.getTime() + DAY);
  const given = foldOnto(rotatedOnce(), [scheduled('k1', 'INACTIVE', dueAt.toISOString())]);
  return foldOnto(given, decideDestroy(given, destroyDue('k1', dueAt)));
}

describe('DestroyDueKey', () => {
  const dueAt = new Date(NOW.getTime() + DAY);
  const given = () => foldOnto(rotatedOnce(), [scheduled('k1', 'INACTIVE', dueAt.toISOString())]);

  it('when due: ManagedKeyDestroyed with the receipt; the key is DESTROYED and no longer scheduled', () => {
    const state = given();
    const { events, next } = decideAndFold(state, destroyDue('k1', dueAt));
    assert.deepEqual(events, [
      {
        type: 'ManagedKeyDestroyed',
        data: {
          ...S,
          keyId: keyIdFor(S, 'k1'),
          metadataHash: hashFor(S, 'k1'),
          previousState: 'INACTIVE',
          // No copy in the stream: the key's own identity.
          stkIdentity: keyOf(state, 'k1').stkIdentity,
          receipt: { ...MATERIAL, scheduledAt: at(3), dueAt: dueAt.toISOString() },
        },
      },
    ]);
    const key = keyOf(next, 'k1');
    assert.equal(key.state, 'DESTROYED');
    assert.equal(key.destruction, null);
    assert.equal(key.updatedAt, at(4));
    assert.equal(next.activeKeyId, keyIdFor(S, 'k2'));
    assert.deepEqual(dueDestructions(next, new Date(dueAt.getTime() + DAY)), []);
  });

  it('a DISABLED key is destroyed with previousState DISABLED', () => {
    const state = foldOnto(rotatedOnce(), [
      keyDisabled(S, 'k1', 'INACTIVE'),
      scheduled('k1', 'DISABLED', dueAt.toISOString()),
    ]);
    const [event] = decideDestroy(state, destroyDue('k1', dueAt));
    assert.equal(event?.type === 'ManagedKeyDestroyed' && event.data.previousState, 'DISABLED');
  });

  it('nothing when not yet due (one millisecond before)', () => {
    assert.deepEqual(decideDestroy(given(), destroyDue('k1', new Date(dueAt.getTime() - 1))), []);
    assert.deepEqual(dueDestructions(given(), new Date(dueAt.getTime() - 1)), []);
  });

  it('nothing for a key never scheduled, a cancelled one, or one already destroyed (a racing run)', () => {
    const later = new Date(dueAt.getTime() + DAY);
    assert.deepEqual(decideDestroy(rotatedOnce(), destroyDue('k1', later)), []);
    const cancelledState = foldOnto(given(), [cancelled('k1', dueAt.toISOString())]);
    assert.deepEqual(decideDestroy(cancelledState, destroyDue('k1', later)), []);
    assert.deepEqual(decideDestroy(destroyedK1(), destroyDue('k1', later)), []);
  });

  it("records the identity of the material's last copy, and the fold takes it for the DESTROYED key", () => {
    // Given k1 whose material a rewrap moved under another system key (the scope stream does not know)
    const state = given();
    const moved = 'feedfacecafebeef';
    assert.notEqual(keyOf(state, 'k1').stkIdentity, moved);
    // When its destruction runs with that copy last in the stream
    const { events, next } = decideAndFold(state, destroyDue('k1', dueAt, MATERIAL, moved));
    // Then the event carries it, and the DESTROYED key has it whatever material events a fold saw
    assert.equal(events[0]?.type === 'ManagedKeyDestroyed' && events[0].data.stkIdentity, moved);
    assert.equal(keyOf(next, 'k1').stkIdentity, moved);
  });

  it('refuses a key id the scope does not have with ERR_KEY_NOT_FOUND', () => {
    const command: DestroyCommand = {
      type: 'DestroyDueKey',
      keyId: 'f'.repeat(32) as KeyId,
      now: NOW,
      material: MATERIAL,
      materialStkIdentity: null,
    };
    throwsCode(() => decideDestroy(given(), command), 'ERR_KEY_NOT_FOUND');
  });
});

describe('a key scheduled for destruction, and a destroyed key, under the other commands', () => {
  const dueAt = new Date(NOW.getTime() + DAY).toISOString();
  /** k1 INACTIVE and scheduled, k2 ACTIVE. */
  const scheduledK1 = () => foldOnto(rotatedOnce(), [scheduled('k1', 'INACTIVE', dueAt)]);

  it('disable keeps the schedule; re-enable (DISABLED → INACTIVE) keeps it too', () => {
    let state = foldOnto(scheduledK1(), decideScope(scheduledK1(), when.disableKey(hashFor(S, 'k1'))));
    assert.equal(stateOf(state, 'k1'), 'DISABLED');
    assert.equal(keyOf(state, 'k1').destruction?.dueAt, dueAt);
    state = foldOnto(state, decideScope(state, when.enableKey(hashFor(S, 'k1'))));
    assert.equal(stateOf(state, 'k1'), 'INACTIVE');
    assert.equal(keyOf(state, 'k1').destruction?.dueAt, dueAt);
  });

  it('set-managed-key and rotate refuse to make it ACTIVE (ERR_KEY_DESTRUCTION_SCHEDULED)', () => {
    throwsCode(
      () => decideScope(scheduledK1(), when.set(inactiveAnswer(S, 'k1'))),
      'ERR_KEY_DESTRUCTION_SCHEDULED',
      {
        dueAt,
      },
    );
    throwsCode(
      () => decideScope(scheduledK1(), when.rotate(activeAnswer(S, 'k1'))),
      'ERR_KEY_DESTRUCTION_SCHEDULED',
    );
  });

  it('enable after disable-key-management refuses it as the new ACTIVE key', () => {
    const state = foldOnto(givenEvents(S, enabled(S, 'k1'), managementDisabled(S, 'k1')), [
      scheduled('k1', 'INACTIVE', dueAt),
    ]);
    throwsCode(() => decideScope(state, when.enable(activeAnswer(S, 'k1'))), 'ERR_KEY_DESTRUCTION_SCHEDULED');
  });

  it('a refresh does not bring back a provider-demoted key once it is scheduled', () => {
    // k1 ACTIVE, demoted by a refresh (the one key a later refresh may restore), then scheduled.
    const demoted = givenEvents(S, enabled(S, 'k1'), refreshed(S, 'k1', 'ACTIVE', 'INACTIVE', 'INACTIVE'));
    assert.equal(demoted.providerDemotedKeyId, keyIdFor(S, 'k1'));
    const state = foldOnto(demoted, [scheduled('k1', 'INACTIVE', dueAt)]);
    const events = decideScope(state, when.refresh(S, { k1: activeAnswer(S, 'k1') }));
    assert.equal(stateOf(foldOnto(state, events), 'k1'), 'INACTIVE');
  });

  it('a DESTROYED key: refresh skips it, set/rotate refuse it with ERR_KEY_DESTROYED, disable/enable refuse it', () => {
    const state = destroyedK1();
    const plan = planRefresh(state);
    assert.ok(plan.kind === 'refresh' && plan.keys.every((k) => k.keyId !== keyIdFor(S, 'k1')));
    throwsCode(() => decideScope(state, when.set(inactiveAnswer(S, 'k1'))), 'ERR_KEY_DESTROYED');
    throwsCode(() => decideScope(state, when.rotate(activeAnswer(S, 'k1'))), 'ERR_KEY_DESTROYED');
    throwsCode(() => decideScope(state, when.disableKey(hashFor(S, 'k1'))), 'ERR_KEY_ALREADY_DISABLED', {
      state: 'DESTROYED',
    });
    throwsCode(() => decideScope(state, when.enableKey(hashFor(S, 'k1'))), 'ERR_KEY_NOT_DISABLED');
  });

  it('disable-key-management leaves a DESTROYED key DESTROYED', () => {
    const state = destroyedK1();
    const next = foldOnto(state, decideScope(state, when.disableManagement()));
    assert.equal(stateOf(next, 'k1'), 'DESTROYED');
    assert.equal(stateOf(next, 'k2'), 'INACTIVE');
  });
});

describe('materialHashOf', () => {
  const copy = (revision: bigint, wrapped: string, stkIdentity = '0123456789abcdef'): MaterialCopy => ({
    revision,
    eventId: `00000000-0000-8000-8000-00000000000${revision}`,
    keyId: keyIdFor(S, 'k1'),
    stkIdentity,
    algorithm: 'AES-256-GCM',
    wrapped,
  });

  /** The definition in docs/audit.md, written out again with Buffer.concat. */
  function byTheDocs(copies: readonly MaterialCopy[]): string {
    const parts: Buffer[] = [];
    const field = (value: string) => {
      const bytes = Buffer.from(value, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length, 0);
      parts.push(length, bytes);
    };
    field('keyledger-destroyed-material-v1');
    for (const c of copies) {
      field(String(c.revision));
      field(c.eventId);
      field(c.keyId);
      field(c.stkIdentity);
      field(c.algorithm);
      field(c.wrapped);
    }
    return createHash('sha256').update(Buffer.concat(parts)).digest('hex');
  }

  it('is the documented SHA-256 over the tag and each copy', () => {
    const copies = [copy(0n, 'd3JhcHBlZC0x'), copy(1n, 'd3JhcHBlZC0y', 'fedcba9876543210')];
    assert.match(materialHashOf(copies), /^[0-9a-f]{64}$/);
    assert.equal(materialHashOf(copies), byTheDocs(copies));
    assert.equal(materialHashOf([]), byTheDocs([]));
  });

  it('changes with any field and with the order of the copies', () => {
    const a = copy(0n, 'd3JhcHBlZC0x');
    const b = copy(1n, 'd3JhcHBlZC0y');
    const base = materialHashOf([a, b]);
    assert.notEqual(materialHashOf([b, a]), base);
    assert.notEqual(materialHashOf([a]), base);
    for (const field of ['eventId', 'keyId', 'stkIdentity', 'algorithm', 'wrapped'] as const) {
      assert.notEqual(materialHashOf([{ ...a, [field]: `${a[field]}x` }, b]), base, field);
    }
    assert.notEqual(materialHashOf([{ ...a, revision: 5n }, b]), base);
    // Length prefixes: moving a character from one field to the next changes the hash.
    assert.notEqual(
      materialHashOf([{ ...a, stkIdentity: `${a.stkIdentity}A`, algorithm: 'ES-256-GCM' }, b]),
      materialHashOf([{ ...a, stkIdentity: a.stkIdentity, algorithm: 'AES-256-GCM' }, b]),
    );
  });
});
