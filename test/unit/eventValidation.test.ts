import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeyledgerError } from '../../src/domain/errors.js';
import {
  eventDataSchemas,
  eventMetadataSchema,
  isLedgerEventType,
  type LedgerEventType,
  parseLedgerEvent,
  type StoredEventShape,
} from '../../src/domain/events.js';
import {
  FAST_CHECKED_EVENT_TYPES,
  fastCheckData,
  fastCheckMetadata,
} from '../../src/domain/fastEventChecks.js';
import { isCanonicalCustodian, parseCustodian } from '../../src/domain/identities.js';
import { KEY_STATES, PROVIDER_KEY_STATES } from '../../src/domain/keyState.js';

/**
 * parseLedgerEvent checks the common events with hand-written checks (fastEventChecks.ts) and
 * everything else with the zod schemas. These properties hold the hand-written checks to the
 * schemas: whatever they vouch for, zod accepts and answers unchanged; and parseLedgerEvent as a
 * whole answers exactly what a zod-only parse answers, the same value or the same ERR_EVENT_SCHEMA,
 * for valid events, valid events in other spellings, and events broken in many ways.
 */

const RUNS = 3000;

const hexOf = (length: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
const base64url = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
  minLength: 43,
  maxLength: 43,
});
const canonicalCustodian = fc
  .uint8Array({ minLength: 1, maxLength: 255 })
  .map((bytes) => Buffer.from(bytes).toString('base64'));
/** 1..255 bytes of well-formed UTF-8; the near misses below bring the others. */
const namespace = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 30 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 70 }),
    fc.string({ unit: 'binary-ascii', minLength: 250, maxLength: 255 }),
  )
  .filter((ns) => Buffer.byteLength(ns) <= 255 && ns.isWellFormed());
const keyId = hexOf(32);
const keyState = fc.constantFrom(...KEY_STATES);
const providerState = fc.constantFrom(...PROVIDER_KEY_STATES);
const hex16 = hexOf(16);
const isoTime = fc
  .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString());

/** Records as JSON.parse makes them (fast-check also makes null-prototype ones, unless told). */
function plain<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const keyRecord = plain({
  keyId,
  metadata: fc.string({ minLength: 1, maxLength: 60 }),
  metadataHash: base64url,
  checksum: hex16,
  stkIdentity: hex16,
});

function scoped<T>(fields: fc.Arbitrary<T>) {
  return fc
    .tuple(canonicalCustodian, namespace, fields)
    .map(([custodian, ns, rest]) => ({ custodian, namespace: ns, ...rest }));
}

/** Valid data, in canonical form, for every type with a hand-written check. */
const validData: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  KeyManagementEnabled: scoped(plain({ key: keyRecord, previousKeyId: fc.option(keyId, { nil: null }) })),
  ManagedKeyRotated: scoped(plain({ key: keyRecord, previousKeyId: fc.option(keyId, { nil: null }) })),
  ManagedKeySet: scoped(plain({ key: keyRecord, previousKeyId: fc.option(keyId, { nil: null }) })),
  ManagedKeyDisabled: scoped(plain({ keyId, previousState: keyState })),
  ManagedKeyReenabled: scoped(plain({ keyId })),
  ManagedKeyRefreshed: scoped(
    plain({ keyId, previousState: keyState, state: keyState, providerState: providerState }),
  ),
  CacheEntryEjected: scoped(plain({ keyId: fc.option(keyId, { nil: null }) })),
  KeyMaterialWrapped: scoped(
    plain({
      keyId,
      metadataHash: base64url,
      stkIdentity: hex16,
      algorithm: fc.constant('AES-256-GCM'),
      wrapped: fc.base64String({ minLength: 4, maxLength: 200 }),
    }),
  ),
};

const metadataFields = {
  actor: fc.string({ minLength: 1, maxLength: 20 }),
  reason: fc.option(fc.string({ maxLength: 40 }), { nil: null }),
  correlationId: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 20 })),
  causationId: fc.option(fc.string({ maxLength: 20 }), { nil: null }),
  occurredAt: isoTime,
};
const validMetadata = fc.oneof(
  plain({ schemaVersion: fc.constant(1), ...metadataFields }),
  plain({
    schemaVersion: fc.constant(2),
    ...metadataFields,
    prevHash: fc.option(hexOf(64), { nil: null }),
  }),
  plain({
    schemaVersion: fc.constant(3),
    ...metadataFields,
    prevHash: fc.option(hexOf(64), { nil: null }),
    checkpoint: fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String),
  }),
);

/** Values one step from valid ones: wrong case, wrong length, boundary lengths, other types. */
const NEAR_MISSES: readonly unknown[] = [
  '',
  'x',
  '*',
  'Kg==',
  'QR==',
  'Zg',
  'Zm9v',
  'a'.repeat(31),
  'a'.repeat(33),
  'A'.repeat(32),
  'g'.repeat(32),
  'a'.repeat(16),
  'A'.repeat(16),
  '0'.repeat(64),
  'F'.repeat(64),
  'h'.repeat(43),
  'h'.repeat(42),
  'h+'.repeat(21).concat('h'),
  'ACTIVE',
  'active',
  'DESTROYED',
  'AES-256-GCM',
  'aes-256-gcm',
  '2025-01-01T00:00:00.000Z',
  '2024-02-29T12:00:00Z',
  '2025-02-29T12:00:00Z',
  '2025-01-01T00:00:00+01:00',
  '2025-01-01 00:00:00Z',
  'x'.repeat(128),
  'x'.repeat(129),
  'x'.repeat(256),
  'x'.repeat(257),
  'x'.repeat(1024),
  'x'.repeat(1025),
  'x'.repeat(4096),
  'x'.repeat(4097),
  'é'.repeat(128),
  '\uD800',
  null,
  0,
  1,
  2,
  3,
  -1,
  1.5,
  true,
  [],
  {},
];
const nearMiss = fc.constantFrom(...NEAR_MISSES);

type Mutation =
  | { readonly kind: 'drop'; readonly at: number }
  | { readonly kind: 'add'; readonly name: string; readonly value: unknown }
  | { readonly kind: 'set'; readonly at: number; readonly value: unknown }
  | { readonly kind: 'setNested'; readonly at: number; readonly inner: number; readonly value: unknown }
  | { readonly kind: 'tweak'; readonly at: number; readonly inner: number; readonly how: Tweak }
  | { readonly kind: 'reorder' }
  | { readonly kind: 'nullPrototype' };

/** The smallest changes to a value that is there: one character more or less, another case, ±1. */
const TWEAKS = [
  'append',
  'appendUnicode',
  'chop',
  'upper',
  'empty',
  'increment',
  'decrement',
  'null',
  'quote',
  'loneSurrogate',
  'otherState',
] as const;
type Tweak = (typeof TWEAKS)[number];

function tweak(current: unknown, how: Tweak): unknown {
  if (how === 'null') return current === null ? 'null' : null;
  if (how === 'otherState') return current === 'DESTROYED' ? 'ACTIVE' : 'DESTROYED';
  if (typeof current === 'number') {
    if (how === 'increment') return current + 1;
    if (how === 'decrement') return current - 1;
    return how === 'quote' ? String(current) : current + 0.5;
  }
  if (typeof current !== 'string') return how === 'quote' ? JSON.stringify(current) : current;
  switch (how) {
    case 'append':
      return `${current}a`;
    case 'appendUnicode':
      return `${current}\u00e9`;
    case 'loneSurrogate':
      return `${current}\ud800`;
    case 'chop':
      return current.slice(0, -1);
    case 'upper':
      return current.toUpperCase() === current ? current.toLowerCase() : current.toUpperCase();
    case 'empty':
      return '';
    case 'increment':
      return current.repeat(2);
    case 'decrement':
      return current.slice(1);
    case 'quote':
      return ` ${current}`;
    default: {
      const unreachable: never = how;
      return unreachable;
    }
  }
}

const value = fc.oneof(nearMiss, fc.jsonValue({ maxDepth: 2 }));
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('add' as const),
    name: fc.constantFrom('extra', 'keyId', '__proto__', 'constructor', 'state'),
    value,
  }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value }),
  fc.record({ kind: fc.constant('setNested' as const), at: fc.nat(), inner: fc.nat(), value }),
  fc.record({
    kind: fc.constant('tweak' as const),
    at: fc.nat(),
    inner: fc.nat(),
    how: fc.constantFrom(...TWEAKS),
  }),
  fc.record({ kind: fc.constant('reorder' as const) }),
  fc.record({ kind: fc.constant('nullPrototype' as const) }),
);

/** A JSON-like copy of `input` with `m` applied (the input is left alone). */
function mutate(input: Record<string, unknown>, m: Mutation): unknown {
  const entries = Object.entries(input);
  const pick = (at: number) => entries[at % entries.length]?.[0] ?? 'none';
  switch (m.kind) {
    case 'drop': {
      const copy = { ...input };
      delete copy[pick(m.at)];
      return copy;
    }
    case 'add': {
      // defineProperty: `__proto__` as an own key, as JSON.parse makes it from stored text.
      const copy = { ...input };
      Object.defineProperty(copy, m.name, {
        value: m.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return copy;
    }
    case 'set':
      return { ...input, [pick(m.at)]: m.value };
    case 'setNested': {
      const name = pick(m.at);
      const inner = input[name];
      if (typeof inner !== 'object' || inner === null || Array.isArray(inner))
        return { ...input, [name]: m.value };
      const innerEntries = Object.keys(inner);
      const innerName = innerEntries[m.inner % innerEntries.length] ?? 'none';
      return { ...input, [name]: { ...inner, [innerName]: m.value } };
    }
    case 'tweak': {
      const name = pick(m.at);
      const inner = input[name];
      if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) {
        return { ...input, [name]: tweak(inner, m.how) };
      }
      const innerNames = Object.keys(inner);
      const innerName = innerNames[m.inner % innerNames.length] ?? 'none';
      const nested = inner as Record<string, unknown>;
      return { ...input, [name]: { ...nested, [innerName]: tweak(nested[innerName], m.how) } };
    }
    case 'reorder':
      return Object.fromEntries(entries.reverse());
    case 'nullPrototype':
      return Object.assign(Object.create(null), input);
    default: {
      const unreachable: never = m;
      return unreachable;
    }
  }
}

/** Valid or broken: a valid value, or one with one to three mutations applied. */
function validOrBroken(valid: fc.Arbitrary<Record<string, unknown>>) {
  return fc
    .tuple(valid, fc.array(mutation, { maxLength: 3 }))
    .map(([input, mutations]) =>
      mutations.reduce<unknown>(
        (current, m) =>
          typeof current === 'object' && current !== null
            ? mutate(current as Record<string, unknown>, m)
            : current,
        input,
      ),
    );
}

/** The answer of a zod-only parse: what parseLedgerEvent answered before the hand-written checks. */
function zodOnly(stored: StoredEventShape): { ok: true; value: unknown } | { ok: false } {
  if (!isLedgerEventType(stored.type)) return { ok: false };
  const meta = eventMetadataSchema.safeParse(stored.metadata);
  const data = eventDataSchemas[stored.type].safeParse(stored.data);
  if (!meta.success || !data.success) return { ok: false };
  return {
    ok: true,
    value: {
      type: stored.type,
      data: data.data,
      meta: meta.data,
      streamName: stored.streamName,
      revision: stored.revision,
      position: stored.position,
    },
  };
}

function stored(type: string, data: unknown, metadata: unknown): StoredEventShape {
  return { streamName: 'kl-scope-x', revision: 7n, position: 42n, type, data, metadata };
}

const anyFastType = fc.constantFrom(...FAST_CHECKED_EVENT_TYPES);

describe('event validation: hand-written checks against the zod schemas', () => {
  it('covers the event types a replay reads most', () => {
    assert.deepEqual([...FAST_CHECKED_EVENT_TYPES].sort(), Object.keys(validData).sort());
  });

  it('whatever a data check vouches for, the schema accepts and answers unchanged', () => {
    fc.assert(
      fc.property(
        anyFastType.chain((type) =>
          fc.tuple(
            fc.constant(type),
            validOrBroken(validData[type] as fc.Arbitrary<Record<string, unknown>>),
          ),
        ),
        ([type, data]) => {
          if (!fastCheckData(type, data)) return;
          const parsed = eventDataSchemas[type as LedgerEventType].safeParse(data);
          assert.ok(parsed.success, `zod refuses what the check vouched for: ${JSON.stringify(data)}`);
          assert.deepStrictEqual(parsed.data, data);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('whatever the metadata check vouches for, the schema accepts and answers unchanged', () => {
    fc.assert(
      fc.property(validOrBroken(validMetadata as fc.Arbitrary<Record<string, unknown>>), (metadata) => {
        if (!fastCheckMetadata(metadata)) return;
        const parsed = eventMetadataSchema.safeParse(metadata);
        assert.ok(parsed.success, `zod refuses what the check vouched for: ${JSON.stringify(metadata)}`);
        assert.deepStrictEqual(parsed.data, metadata);
      }),
      { numRuns: RUNS },
    );
  });

  it('vouches for every valid event of those types in its canonical form (the fast path is taken)', () => {
    fc.assert(
      fc.property(
        anyFastType.chain((type) =>
          fc.tuple(fc.constant(type), validData[type] as fc.Arbitrary<Record<string, unknown>>),
        ),
        validMetadata,
        ([type, data], metadata) => {
          assert.equal(fastCheckData(type, data), true, JSON.stringify(data));
          assert.equal(fastCheckMetadata(metadata), true, JSON.stringify(metadata));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('never vouches for the other event types: zod checks them', () => {
    for (const type of Object.keys(eventDataSchemas)) {
      if (FAST_CHECKED_EVENT_TYPES.includes(type)) continue;
      assert.equal(fastCheckData(type, {}), false, type);
    }
    assert.equal(fastCheckData('toString', {}), false);
  });
});

describe('event validation at the limits', () => {
  const metadata = {
    schemaVersion: 2,
    actor: 'a',
    reason: null,
    correlationId: 'c',
    causationId: null,
    occurredAt: '2026-01-01T00:00:00.000Z',
    prevHash: null,
  };
  const key = {
    keyId: 'a'.repeat(32),
    metadata: '{}',
    metadataHash: 'h'.repeat(43),
    checksum: '0'.repeat(16),
    stkIdentity: '1'.repeat(16),
  };
  const enabled = { custodian: 'Kg==', namespace: 'orders', key, previousKeyId: null };
  const wrapped = {
    custodian: 'Kg==',
    namespace: 'orders',
    keyId: 'a'.repeat(32),
    metadataHash: 'h'.repeat(43),
    stkIdentity: '1'.repeat(16),
    algorithm: 'AES-256-GCM',
    wrapped: 'AAAA',
  };

  /** Both sides agree, and on a valid value the check vouches for it (the fast path is taken). */
  function agree(valid: boolean, vouched: boolean, zodAccepts: boolean, what: string): void {
    assert.equal(zodAccepts, valid, `zod on ${what}`);
    assert.equal(vouched, valid, `hand-written check on ${what}`);
  }

  it('each bounded metadata field at its limit and one past it', () => {
    const cases: [string, Record<string, unknown>, boolean][] = [
      ['actor of 256', { actor: 'x'.repeat(256) }, true],
      ['actor of 257', { actor: 'x'.repeat(257) }, false],
      ['empty actor', { actor: '' }, false],
      ['reason of 1024', { reason: 'x'.repeat(1024) }, true],
      ['reason of 1025', { reason: 'x'.repeat(1025) }, false],
      ['empty reason', { reason: '' }, true],
      ['correlationId of 128', { correlationId: 'x'.repeat(128) }, true],
      ['correlationId of 129', { correlationId: 'x'.repeat(129) }, false],
      ['empty correlationId', { correlationId: '' }, false],
      ['causationId of 128', { causationId: 'x'.repeat(128) }, true],
      ['causationId of 129', { causationId: 'x'.repeat(129) }, false],
      ['empty causationId', { causationId: '' }, true],
      ['29 February of a leap year', { occurredAt: '2024-02-29T23:59:59Z' }, true],
      ['29 February of another year', { occurredAt: '2025-02-29T00:00:00Z' }, false],
      ['microseconds', { occurredAt: '2026-01-01T00:00:00.123456Z' }, true],
      ['an offset', { occurredAt: '2026-01-01T00:00:00+01:00' }, false],
      ['prevHash of 64 hex digits', { prevHash: 'f'.repeat(64) }, true],
      ['prevHash in upper case', { prevHash: 'F'.repeat(64) }, false],
      ['prevHash of 63 hex digits', { prevHash: 'f'.repeat(63) }, false],
      ['schemaVersion 3 without a checkpoint', { schemaVersion: 3 }, false],
      ['schemaVersion 3 with a checkpoint', { schemaVersion: 3, checkpoint: '12' }, true],
      ['schemaVersion 3 with a checkpoint not in decimal', { schemaVersion: 3, checkpoint: '012' }, false],
      ['schemaVersion 2 with a checkpoint', { checkpoint: '12' }, false],
      ['schemaVersion 4', { schemaVersion: 4, checkpoint: '12' }, false],
      ['schemaVersion 1 with a prevHash', { schemaVersion: 1 }, false],
    ];
    for (const [what, change, valid] of cases) {
      const value = { ...metadata, ...change };
      agree(valid, fastCheckMetadata(value), eventMetadataSchema.safeParse(value).success, what);
    }
  });

  it('each bounded data field at its limit and one past it', () => {
    const cases: [string, LedgerEventType, Record<string, unknown>, boolean][] = [
      [
        'key metadata of 4096',
        'KeyManagementEnabled',
        { ...enabled, key: { ...key, metadata: 'x'.repeat(4096) } },
        true,
      ],
      [
        'key metadata of 4097',
        'KeyManagementEnabled',
        { ...enabled, key: { ...key, metadata: 'x'.repeat(4097) } },
        false,
      ],
      ['empty key metadata', 'KeyManagementEnabled', { ...enabled, key: { ...key, metadata: '' } }, false],
      [
        'namespace of 255 bytes',
        'KeyManagementEnabled',
        { ...enabled, namespace: 'é'.repeat(127).concat('x') },
        true,
      ],
      ['namespace of 256 bytes', 'KeyManagementEnabled', { ...enabled, namespace: 'é'.repeat(128) }, false],
      [
        'namespace with a lone surrogate',
        'KeyManagementEnabled',
        { ...enabled, namespace: 'a\uD800' },
        false,
      ],
      ['empty namespace', 'KeyManagementEnabled', { ...enabled, namespace: '' }, false],
      ['wrapped of 1024', 'KeyMaterialWrapped', { ...wrapped, wrapped: 'A'.repeat(1024) }, true],
      ['wrapped of 1025', 'KeyMaterialWrapped', { ...wrapped, wrapped: 'A'.repeat(1025) }, false],
      ['empty wrapped', 'KeyMaterialWrapped', { ...wrapped, wrapped: '' }, false],
      ['another algorithm', 'KeyMaterialWrapped', { ...wrapped, algorithm: 'AES-128-GCM' }, false],
      ['a key id in upper case', 'KeyMaterialWrapped', { ...wrapped, keyId: 'A'.repeat(32) }, false],
    ];
    for (const [what, type, data, valid] of cases) {
      agree(valid, fastCheckData(type, data), eventDataSchemas[type].safeParse(data).success, what);
    }
  });
});

describe('event validation: every field of every hand-checked shape, changed one at a time', () => {
  const scope = { custodian: 'dGVuYW50LTE=', namespace: 'orders' };
  const id = 'abcdef0123456789abcdef0123456789';
  const record = {
    keyId: id,
    metadata: '{"KeyAlias":"k"}',
    metadataHash: 'Iuz8-DIaSmbIYEhTH-i1rwZqSLYOl1KK2QHuhGRpsWM',
    checksum: '0123456789abcdef',
    stkIdentity: 'fedcba9876543210',
  };
  const bases: Record<string, Record<string, unknown>> = {
    KeyManagementEnabled: { ...scope, key: record, previousKeyId: id },
    ManagedKeyRotated: { ...scope, key: record, previousKeyId: null },
    ManagedKeySet: { ...scope, key: record, previousKeyId: id },
    ManagedKeyDisabled: { ...scope, keyId: id, previousState: 'INACTIVE' },
    ManagedKeyReenabled: { ...scope, keyId: id },
    ManagedKeyRefreshed: {
      ...scope,
      keyId: id,
      previousState: 'ACTIVE',
      state: 'INACTIVE',
      providerState: 'INACTIVE',
    },
    CacheEntryEjected: { ...scope, keyId: id },
    KeyMaterialWrapped: {
      ...scope,
      keyId: id,
      metadataHash: record.metadataHash,
      stkIdentity: record.stkIdentity,
      algorithm: 'AES-256-GCM',
      wrapped: 'AAAA',
    },
  };
  const metadataBases = [
    {
      schemaVersion: 1,
      actor: 'a',
      reason: 'r',
      correlationId: 'c',
      causationId: 'x',
      occurredAt: '2026-01-01T00:00:00Z',
    },
    {
      schemaVersion: 2,
      actor: 'a',
      reason: null,
      correlationId: 'c',
      causationId: null,
      occurredAt: '2026-01-01T00:00:00.000Z',
      prevHash: '0123456789abcdef'.repeat(4),
    },
  ];
  const replacements = (current: unknown): unknown[] => [
    ...NEAR_MISSES,
    ...TWEAKS.map((how) => tweak(current, how)),
  ];

  /** Every variant of `base` with one field (or one field of a nested object) replaced, dropped or added. */
  function variants(base: Record<string, unknown>): unknown[] {
    const out: unknown[] = [base, Object.fromEntries(Object.entries(base).reverse())];
    for (const name of [...Object.keys(base), 'extra', '__proto__']) {
      const without = { ...base };
      delete without[name];
      out.push(without);
      for (const value of replacements(base[name])) {
        const changed = { ...base };
        Object.defineProperty(changed, name, { value, enumerable: true, writable: true, configurable: true });
        out.push(changed);
      }
      const inner = base[name];
      if (typeof inner === 'object' && inner !== null)
        out.push(...variants(inner as Record<string, unknown>).map((v) => ({ ...base, [name]: v })));
    }
    return out;
  }

  it('the checks vouch only for what zod accepts unchanged, and for every base shape', () => {
    let vouched = 0;
    let refused = 0;
    for (const [type, base] of Object.entries(bases)) {
      assert.equal(fastCheckData(type, base), true, `${type} base`);
      for (const data of variants(base)) {
        if (!fastCheckData(type, data)) {
          refused++;
          continue;
        }
        vouched++;
        const parsed = eventDataSchemas[type as LedgerEventType].safeParse(data);
        assert.ok(parsed.success, `${type}: zod refuses what the check vouched for: ${JSON.stringify(data)}`);
        assert.deepStrictEqual(parsed.data, data);
      }
    }
    for (const base of metadataBases) {
      assert.equal(fastCheckMetadata(base), true, `metadata version ${base.schemaVersion}`);
      for (const metadata of variants(base)) {
        if (!fastCheckMetadata(metadata)) {
          refused++;
          continue;
        }
        vouched++;
        const parsed = eventMetadataSchema.safeParse(metadata);
        assert.ok(parsed.success, `zod refuses metadata the check vouched for: ${JSON.stringify(metadata)}`);
        assert.deepStrictEqual(parsed.data, metadata);
      }
    }
    // Both outcomes occur: the sweep exercises the checks, not only their refusals.
    assert.ok(vouched > 50 && refused > 1000, `vouched ${vouched}, refused ${refused}`);
  });
});

describe('parseLedgerEvent answers what a zod-only parse answers', () => {
  it('the same event, or ERR_EVENT_SCHEMA naming stream and revision, for valid and broken events', () => {
    fc.assert(
      fc.property(
        anyFastType.chain((type) =>
          fc.tuple(
            fc.constant(type),
            validOrBroken(validData[type] as fc.Arbitrary<Record<string, unknown>>),
          ),
        ),
        validOrBroken(validMetadata as fc.Arbitrary<Record<string, unknown>>),
        ([type, data], metadata) => {
          const event = stored(type, data, metadata);
          const expected = zodOnly(event);
          if (expected.ok) {
            assert.deepStrictEqual(parseLedgerEvent(event), expected.value);
          } else {
            assert.throws(
              () => parseLedgerEvent(event),
              (error: unknown) =>
                error instanceof KeyledgerError &&
                error.code === 'ERR_EVENT_SCHEMA' &&
                error.details.stream === 'kl-scope-x' &&
                error.details.revision === '7',
            );
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('answers a non-canonical custodian in canonical form, as the schema transforms it', () => {
    const event = stored(
      'ManagedKeyReenabled',
      { custodian: '*', namespace: 'orders', keyId: 'a'.repeat(32) },
      {
        schemaVersion: 1,
        actor: 'a',
        reason: null,
        correlationId: 'c',
        causationId: null,
        occurredAt: '2026-01-01T00:00:00Z',
      },
    );
    assert.equal(fastCheckData(event.type, event.data), false);
    const parsed = parseLedgerEvent(event);
    assert.equal(parsed.type === 'ManagedKeyReenabled' && parsed.data.custodian, 'Kg==');
  });

  it('stops a refresh with a state that is no key state, naming stream, revision and field', () => {
    const event = stored(
      'ManagedKeyRefreshed',
      {
        custodian: 'Kg==',
        namespace: 'orders',
        keyId: 'a'.repeat(32),
        previousState: 'ACTIVE',
        state: 'RETIRED',
        providerState: 'ACTIVE',
      },
      {
        schemaVersion: 1,
        actor: 'a',
        reason: null,
        correlationId: 'c',
        causationId: null,
        occurredAt: '2026-01-01T00:00:00Z',
      },
    );
    assert.throws(
      () => parseLedgerEvent(event),
      (error: unknown) =>
        error instanceof KeyledgerError &&
        error.code === 'ERR_EVENT_SCHEMA' &&
        error.message.includes('kl-scope-x@7') &&
        error.message.includes('state'),
    );
  });

  it('stops on metadata with an unknown key, or a prevHash under schema version 1', () => {
    const data = { custodian: 'Kg==', namespace: 'orders', keyId: null };
    const base = { schemaVersion: 1, actor: 'a', reason: null, correlationId: 'c', causationId: null };
    for (const metadata of [
      { ...base, occurredAt: '2026-01-01T00:00:00Z', extra: 1 },
      { ...base, occurredAt: '2026-01-01T00:00:00Z', prevHash: null },
      { ...base, occurredAt: '2026-02-30T00:00:00Z' },
    ]) {
      assert.equal(fastCheckMetadata(metadata), false, JSON.stringify(metadata));
      assert.throws(
        () => parseLedgerEvent(stored('CacheEntryEjected', data, metadata)),
        (error: unknown) => error instanceof KeyledgerError && error.code === 'ERR_EVENT_SCHEMA',
      );
    }
  });
});

describe('custodian memo', () => {
  it('answers the canonical form each time, and keeps refusing what is not a custodian', () => {
    assert.equal(parseCustodian('*'), 'Kg==');
    assert.equal(parseCustodian('*'), 'Kg==');
    assert.equal(isCanonicalCustodian('*'), false);
    assert.equal(isCanonicalCustodian('Kg=='), true);
    assert.equal(parseCustodian('QR=='), 'QQ==', 'stray bits are dropped');
    assert.equal(isCanonicalCustodian('QR=='), false);
    for (let i = 0; i < 2; i++) {
      assert.throws(() => parseCustodian('not base64!'), { code: 'ERR_INVALID_CUSTODIAN' });
      assert.equal(isCanonicalCustodian('not base64!'), false);
    }
  });
});
