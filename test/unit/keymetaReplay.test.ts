import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { emptyKeymetaView, evolveKeymeta, type KeymetaView } from '../../projections/keymeta.js';
import { KeymetaReplay } from '../../projections/keymetaReplay.js';
import type { DomainEvent, LedgerEvent } from '../../src/domain/events.js';
import { type KeyScope, keyScope } from '../../src/domain/identities.js';
import type { KeyState } from '../../src/domain/keyState.js';
import {
  at,
  enabled,
  enableFailed,
  hashFor,
  keyDisabled,
  keyIdFor,
  keyReenabled,
  keySet,
  managementDisabled,
  OTHER_STK,
  recordFor,
  refreshed,
  rotated,
  STK,
  storedEvent,
} from '../helpers/domainFixtures.js';
import { plainView } from '../helpers/keymetaViews.js';

/**
 * The replay fold (mutable working state between boundaries) against the reference fold
 * (`evolveKeymeta`, event by event) over random sequences of every event type the view folds,
 * with boundaries (`view()`) at random points: at every boundary the two views are equal, and
 * whatever an earlier boundary handed out, or the view the replay started from held, is never
 * changed afterwards.
 */
const SCOPES: readonly KeyScope[] = [keyScope('Y3VzdDE=', 'table1/cf1'), keyScope('Y3VzdDI=', 'ns')];
const NAMES: readonly string[] = ['k1', 'k2', 'k3', 'k4'];
/** Enough keys in one scope that its key map is more than one level of the persistent map's trie. */
const MANY_NAMES: readonly string[] = Array.from({ length: 90 }, (_, i) => `key${i}`);
const STKS = [STK, OTHER_STK] as const;
const STATES: readonly KeyState[] = ['ACTIVE', 'INACTIVE', 'DISABLED', 'FAILED', 'DESTROYED'];
const HASH = 'ab'.repeat(32);

type Spec = { kind: number; scope: number; name: number; other: number; stk: number; s1: number; s2: number };
type Step = Spec | 'boundary';

function domainEvent(spec: Spec, n: number, names: readonly string[]): DomainEvent {
  const scope = SCOPES[spec.scope] as KeyScope;
  const name = names[spec.name] as string;
  const other = names[spec.other] as string;
  const stk = STKS[spec.stk] as string;
  const s1 = STATES[spec.s1] as KeyState;
  const s2 = STATES[spec.s2] as KeyState;
  const keyId = keyIdFor(scope, name);
  switch (spec.kind) {
    case 0:
      return enabled(scope, name, spec.other === spec.name ? null : other, stk);
    case 1:
      return enableFailed(scope, spec.s1 % 2 === 0 ? 'FAILED' : 'DISABLED');
    case 2:
      return managementDisabled(scope, ...names.slice(0, spec.other + 1));
    case 3:
      return rotated(scope, name, other, stk);
    case 4:
      return keySet(scope, name, other, stk);
    case 5:
      return keyDisabled(scope, name, s1);
    case 6:
      return keyReenabled(scope, name);
    case 7:
      return refreshed(scope, name, s1, s2, spec.s2 % 2 === 0 ? 'ACTIVE' : 'INACTIVE');
    case 8:
      return {
        type: 'ManagedKeyDestructionScheduled',
        data: { ...scope, keyId, state: spec.s1 % 2 === 0 ? 'INACTIVE' : 'DISABLED', dueAt: at(n + 100) },
      };
    case 9:
      return { type: 'ManagedKeyDestructionCancelled', data: { ...scope, keyId, dueAt: at(n + 100) } };
    case 10:
      return {
        type: 'ManagedKeyDestroyed',
        data: {
          ...scope,
          keyId,
          metadataHash: hashFor(scope, name),
          previousState: 'INACTIVE',
          // Events written before the field existed have none; newer ones carry the material's identity.
          ...(spec.s1 % 2 === 0 ? { stkIdentity: stk } : {}),
          receipt: {
            materialStream: `kl-material-${keyId}`,
            materialEvents: 1,
            materialHash: HASH,
            scheduledAt: at(n),
            dueAt: at(n),
          },
        },
      };
    case 11:
      return {
        type: 'KeyMaterialWrapped',
        data: {
          ...scope,
          keyId,
          metadataHash: hashFor(scope, name),
          stkIdentity: stk,
          algorithm: 'AES-256-GCM',
          wrapped: Buffer.from(`wrapped-${n}`).toString('base64'),
        },
      };
    case 12:
      return {
        type: 'ManagedKeyImported',
        data: {
          ...scope,
          key: recordFor(scope, name, stk),
          state: spec.s1 % 2 === 0 ? 'ACTIVE' : 'INACTIVE',
          previousKeyId: spec.other === spec.name ? null : keyIdFor(scope, other),
          origin: { alias: `alias-${name}`, checksum: 'cd'.repeat(8) },
        },
      };
    default:
      return { type: 'CacheEntryEjected', data: { ...scope, keyId } };
  }
}

/** Valid events (through the parser), positions from `first`, each scope's revisions counting up. */
function ledgerEvents(specs: readonly Spec[], first: number, names = NAMES): LedgerEvent[] {
  const revisions = new Map<string, bigint>();
  return specs.map((spec, i) => {
    const n = first + i;
    const event = domainEvent(spec, n, names);
    const stream = event.type === 'KeyMaterialWrapped' ? `kl-m-${spec.name}` : `kl-s-${spec.scope}`;
    const revision = revisions.get(stream) ?? 0n;
    revisions.set(stream, revision + 1n);
    return storedEvent(event, {
      streamName: stream,
      revision,
      position: BigInt(n),
      correlationId: 'c',
      occurredAt: at(n),
    });
  });
}

// Refreshes (60 % of a real ledger) and the states ACTIVE and INACTIVE are drawn more often, so
// that demotions by the provider and what follows them come up.
const state = fc.oneof(fc.nat(1), fc.nat(STATES.length - 1));
const spec: fc.Arbitrary<Spec> = fc.record({
  kind: fc.oneof(fc.nat(13), fc.constant(7)),
  scope: fc.nat(SCOPES.length - 1),
  name: fc.nat(NAMES.length - 1),
  other: fc.nat(NAMES.length - 1),
  stk: fc.nat(1),
  s1: state,
  s2: state,
});
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: spec },
  { weight: 1, arbitrary: fc.constant('boundary' as const) },
);

function assertSameView(actual: KeymetaView, expected: KeymetaView, where: string): void {
  assert.deepStrictEqual(plainView(actual), plainView(expected), where);
}

/** A view sharing `view`'s states (not its maps), as a restored or live view hands them over. */
function sharing(view: KeymetaView): KeymetaView {
  return {
    position: view.position,
    scopes: new Map(view.scopes),
    keyIndex: new Map(view.keyIndex),
    materials: new Map(view.materials),
  };
}

describe('KeymetaReplay', () => {
  it('equals evolveKeymeta at every boundary, and never changes a state it handed out or was given', () => {
    fc.assert(
      fc.property(
        fc.array(spec, { maxLength: 30 }),
        fc.array(step, { maxLength: 80 }),
        (prefixSpecs, steps) => {
          // A view folded the reference way: the replay starts from it and must leave its states alone.
          const start = emptyKeymetaView();
          for (const event of ledgerEvents(prefixSpecs, 1)) evolveKeymeta(start, event);
          const startCopy = plainView(start);
          // The reference folds the same prefix on its own: no state shared with the replay's start.
          const reference = emptyKeymetaView();
          for (const event of ledgerEvents(prefixSpecs, 1)) evolveKeymeta(reference, event);
          const replay = new KeymetaReplay(sharing(start));
          const handedOut: { view: KeymetaView; copy: unknown }[] = [];
          const events = ledgerEvents(
            steps.filter((s): s is Spec => s !== 'boundary'),
            prefixSpecs.length + 1,
          );
          let next = 0;
          const boundary = (where: string) => {
            const view = replay.view();
            assertSameView(view, reference, where);
            // What the boundary hands out, as a caller would keep it: the states, not the live maps.
            const kept = sharing(view);
            handedOut.push({ view: kept, copy: plainView(kept) });
          };
          for (const [i, s] of steps.entries()) {
            if (s === 'boundary') {
              boundary(`boundary at step ${i}`);
              continue;
            }
            const event = events[next++] as LedgerEvent;
            replay.apply(event);
            evolveKeymeta(reference, event);
          }
          boundary('end');
          assert.deepStrictEqual(plainView(start), startCopy, 'the starting view is unchanged');
          for (const [i, { view, copy }] of handedOut.entries())
            assert.deepStrictEqual(plainView(view), copy, `boundary ${i}'s states are unchanged`);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('agrees on a scope with many keys (rotations over a long history), boundaries included', () => {
    // Mostly rotations and sets to many distinct keys, so that one scope's key map grows past one
    // level of the trie and every kind of change reaches keys deep in it.
    const manySpec: fc.Arbitrary<Spec> = fc.record({
      kind: fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(0, 3, 4, 12) },
        { weight: 2, arbitrary: fc.nat(13) },
      ),
      scope: fc.constant(0),
      name: fc.nat(MANY_NAMES.length - 1),
      other: fc.nat(MANY_NAMES.length - 1),
      stk: fc.nat(1),
      s1: state,
      s2: state,
    });
    fc.assert(
      fc.property(fc.array(manySpec, { minLength: 100, maxLength: 400 }), fc.nat(400), (specs, cut) => {
        const events = ledgerEvents(specs, 1, MANY_NAMES);
        const reference = emptyKeymetaView();
        const replay = new KeymetaReplay(emptyKeymetaView());
        let handedOut: { view: KeymetaView; copy: unknown } | null = null;
        for (const [i, event] of events.entries()) {
          evolveKeymeta(reference, event);
          replay.apply(event);
          if (i === cut) {
            const view = replay.view();
            assertSameView(view, reference, `boundary at ${i}`);
            handedOut = { view: sharing(view), copy: plainView(view) };
          }
        }
        assertSameView(replay.view(), reference, 'end');
        if (handedOut !== null)
          assert.deepStrictEqual(plainView(handedOut.view), handedOut.copy, 'the boundary is unchanged');
      }),
      { numRuns: 60 },
    );
  });

  it('a long random history folds to the same view with no boundary in between', () => {
    fc.assert(
      fc.property(fc.array(spec, { minLength: 200, maxLength: 600 }), (specs) => {
        const reference = emptyKeymetaView();
        const replay = new KeymetaReplay(emptyKeymetaView());
        for (const event of ledgerEvents(specs, 1)) {
          evolveKeymeta(reference, event);
          replay.apply(event);
        }
        assertSameView(replay.view(), reference, 'end');
      }),
      { numRuns: 40 },
    );
  });
});
