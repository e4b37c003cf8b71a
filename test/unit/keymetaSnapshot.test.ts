import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyKeymetaView, evolveKeymeta } from '../../projections/keymeta.js';
import {
  keymetaFromSnapshot,
  keymetaFromSnapshotBySchema,
  keymetaToSnapshot,
} from '../../projections/keymetaSnapshot.js';
import { isKeyledgerError } from '../../src/domain/errors.js';
import type { DomainEvent } from '../../src/domain/events.js';
import { keyScope } from '../../src/domain/identities.js';
import type { JsonValue } from '../../src/store/eventStore.js';
import {
  at,
  enabled,
  hashFor,
  keyIdFor,
  managementDisabled,
  rotated,
  STK,
  storedEvent,
} from '../helpers/domainFixtures.js';
import { plainView } from '../helpers/keymetaViews.js';

/**
 * keymetaFromSnapshot's hand-written fast path against the schema it replaces on the hot path
 * (keymetaFromSnapshotBySchema): the same view for a genuine snapshot, and for every edit the
 * same outcome (the same view, null, or the same error code).
 */
const A = keyScope('Y3VzdDE=', 'orders');
const B = keyScope('Y3VzdDI=', 'ns');

function snapshot(): JsonValue {
  const events: DomainEvent[] = [
    enabled(A, 'k1'),
    rotated(A, 'k2', 'k1'),
    {
      type: 'ManagedKeyDestructionScheduled',
      data: { ...A, keyId: keyIdFor(A, 'k1'), state: 'INACTIVE', dueAt: at(99) },
    },
    enabled(B, 'b1'),
    managementDisabled(B, 'b1'),
    {
      type: 'KeyMaterialWrapped',
      data: {
        ...A,
        keyId: keyIdFor(A, 'k2'),
        metadataHash: hashFor(A, 'k2'),
        stkIdentity: STK,
        algorithm: 'AES-256-GCM',
        wrapped: 'd3JhcHBlZA==',
      },
    },
  ];
  const view = emptyKeymetaView();
  for (const [i, event] of events.entries()) {
    const stream = event.type === 'KeyMaterialWrapped' ? 'kl-m' : `kl-s-${i}`;
    evolveKeymeta(
      view,
      storedEvent(event, {
        streamName: stream,
        revision: BigInt(i),
        position: BigInt(i + 1),
        correlationId: 'c',
        occurredAt: at(i),
      }),
    );
  }
  return keymetaToSnapshot(view);
}

function outcome(read: (state: JsonValue, position: bigint) => unknown, state: JsonValue): unknown {
  try {
    const view = read(state, 7n);
    return view === null ? null : plainView(view as Parameters<typeof plainView>[0]);
  } catch (error) {
    if (isKeyledgerError(error)) return `throws ${error.code}`;
    throw error;
  }
}

type Snap = { version: number; scopes: Record<string, unknown>[]; materials: Record<string, unknown>[] };
const key0 = (s: Snap) =>
  ((s.scopes[0] as Record<string, unknown>).keys as Record<string, unknown>[])[0] as Record<string, unknown>;
const EDITS: Record<string, (s: Snap) => void> = {
  none: () => {},
  version: (s) => {
    s.version = 3;
  },
  'extra top member': (s) => {
    (s as Record<string, unknown>).extra = 1;
  },
  'extra scope member': (s) => {
    (s.scopes[0] as Record<string, unknown>).extra = null;
  },
  'scope member missing': (s) => {
    delete s.scopes[0]?.revision;
  },
  'bad marker': (s) => {
    (s.scopes[0] as Record<string, unknown>).marker = 'ON';
  },
  'revision not decimal': (s) => {
    (s.scopes[0] as Record<string, unknown>).revision = '1e3';
  },
  'revision a number': (s) => {
    (s.scopes[0] as Record<string, unknown>).revision = 3;
  },
  'activeKeyId not an id': (s) => {
    (s.scopes[0] as Record<string, unknown>).activeKeyId = 'zz';
  },
  'extra key member': (s) => {
    key0(s).extra = 'x';
  },
  'key member missing': (s) => {
    delete key0(s).checksum;
  },
  'key member undefined-like null': (s) => {
    key0(s).metadata = null;
  },
  'bad key state': (s) => {
    key0(s).state = 'GONE';
  },
  'bad key id': (s) => {
    key0(s).keyId = 'ABC';
  },
  'bad metadata hash': (s) => {
    key0(s).metadataHash = 'short';
  },
  'destruction with an extra member': (s) => {
    key0(s).destruction = { scheduledAt: at(1), dueAt: at(2), by: 'x' };
  },
  'destruction missing dueAt': (s) => {
    key0(s).destruction = { scheduledAt: at(1) };
  },
  'keys not an array': (s) => {
    (s.scopes[0] as Record<string, unknown>).keys = {};
  },
  'bad custodian': (s) => {
    (s.scopes[0] as Record<string, unknown>).custodian = 'not base64!';
  },
  'material stk not hex16': (s) => {
    (s.materials[0] as Record<string, unknown>).stkIdentity = 'XYZ';
  },
  'material wrapped empty': (s) => {
    (s.materials[0] as Record<string, unknown>).wrapped = '';
  },
  'material extra member': (s) => {
    (s.materials[0] as Record<string, unknown>).extra = 1;
  },
  'scope an array': (s) => {
    s.scopes[0] = [] as unknown as Record<string, unknown>;
  },
};

describe('keymetaFromSnapshot', () => {
  for (const [name, edit] of Object.entries(EDITS)) {
    it(`fast path and schema agree: ${name}`, () => {
      const state = structuredClone(snapshot()) as unknown as Snap;
      edit(state);
      const json = state as unknown as JsonValue;
      assert.deepEqual(outcome(keymetaFromSnapshot, json), outcome(keymetaFromSnapshotBySchema, json));
      if (name === 'none')
        assert.notEqual(outcome(keymetaFromSnapshot, json), null, 'a genuine snapshot is used');
    });
  }
});
