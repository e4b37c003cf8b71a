import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from '../../src/audit/canonicalJson.js';
import {
  CHECKPOINT_MAC_LABEL,
  checkpointMacMessage,
  parseCheckpoint,
} from '../../src/audit/checkpointFormat.js';
import { chainedMetadata, chainLinkOf, eventHash, eventHashPreimage } from '../../src/audit/hashChain.js';
import { softwareSystemKey } from '../../src/crypto/systemKeyHandle.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

/**
 * The hash chain's pure parts against known answers. The vectors were computed with Python's
 * hashlib/hmac and json.dumps(sort_keys=True, separators=(',', ':'), ensure_ascii=False), an
 * implementation independent of this one; docs/formats.md lists the same values.
 */

const FIRST = {
  streamName: 'kl-system',
  eventId: '00000000-0000-4000-8000-000000000001',
  type: 'SystemKeyRecorded',
  data: {
    sequence: 1,
    identity: '9f128045002663f5',
    metadata: '{"KeyAlias":"stk"}',
    metadataHash: 'Iuz8-DIaSmbIYEhTH-i1rwZqSLYOl1KK2QHuhGRpsWM',
    previousIdentity: null,
  },
  metadata: {
    schemaVersion: 2,
    actor: 'alice',
    reason: null,
    correlationId: 'c-1',
    causationId: null,
    occurredAt: '2026-01-01T00:00:00.000Z',
    prevHash: null,
  },
};
const FIRST_PREIMAGE =
  '6b65796c65646765722d6576656e742d763100000000096b6c2d73797374656d0000002430303030303030302d303030302d343030302d383030302d3030303030303030303030310000001153797374656d4b65795265636f72646564000000a57b226964656e74697479223a2239663132383034353030323636336635222c226d65746164617461223a227b5c224b6579416c6961735c223a5c2273746b5c227d222c226d6574616461746148617368223a2249757a382d444961536d624959456854482d693172775a71534c594f6c314b4b325148756847527073574d222c2270726576696f75734964656e74697479223a6e756c6c2c2273657175656e6365223a317d000000927b226163746f72223a22616c696365222c22636175736174696f6e4964223a6e756c6c2c22636f7272656c6174696f6e4964223a22632d31222c226f636375727265644174223a22323032362d30312d30315430303a30303a30302e3030305a222c227072657648617368223a6e756c6c2c22726561736f6e223a6e756c6c2c22736368656d6156657273696f6e223a327d';
const FIRST_HASH = 'de5da65a4cb082e73dd968c6eade1ad71a6030bf97bd533ca6db77be45424a0d';
const SECOND = {
  streamName: 'kl-system',
  eventId: '00000000-0000-4000-8000-000000000002',
  type: 'SystemKeyRetired',
  data: { identity: '9f128045002663f5', sequence: 1 },
  metadata: { ...FIRST.metadata, occurredAt: '2026-01-02T00:00:00.000Z', prevHash: FIRST_HASH },
};
const SECOND_HASH = 'e4955a178f30f976f524417a7fa3c9c69fdc6b367f8ed6bb3301cca400869601';

/** A checkpoint of the two events above, MACed under the STK 20 21 … 3f (identity 9f128045002663f5). */
const CHECKPOINT = {
  streamName: 'kl-checkpoints',
  eventId: '00000000-0000-4000-8000-000000000003',
  type: 'LedgerCheckpointed',
  data: {
    previousPosition: '0',
    coveredPosition: '2',
    heads: [{ stream: 'kl-system', revision: '1', position: '2', hash: SECOND_HASH }],
    stkIdentity: '9f128045002663f5',
    mac: 'ff92b7baa45798c64c832ee487d473b6ce6fdd1430dbd24d65a0149435344532',
  },
  metadata: { ...FIRST.metadata, correlationId: 'c-2', occurredAt: '2026-01-03T00:00:00.000Z' },
};
const CHECKPOINT_HASH = '3940cda9fc621beb4c4743fff77f069f18a07eac7c250e368bc1d46a137ec4ae';

function stk() {
  return softwareSystemKey(
    '{"KeyAlias":"stk"}',
    SecretBytes.copyOf(Buffer.from(Array.from({ length: 32 }, (_, i) => 0x20 + i))),
  );
}

describe('canonicalJson (RFC 8785 for ledger JSON)', () => {
  it('sorts members at every depth, writes no whitespace, and leaves out undefined members', () => {
    assert.equal(
      canonicalJson({ b: [1, 2.5, -0, 'xé\n'], a: { z: null, y: true }, u: undefined }),
      '{"a":{"y":true,"z":null},"b":[1,2.5,0,"xé\\n"]}',
    );
  });

  it('writes numbers and strings as ECMAScript JSON does', () => {
    assert.equal(
      canonicalJson([1e21, 1e-7, 0.1, -5, 'a"b\\c\u0001', '🔑']),
      '[1e+21,1e-7,0.1,-5,"a\\"b\\\\c\\u0001","🔑"]',
    );
  });

  it('orders names by UTF-16 code units (so "é" after "z", and a surrogate pair before U+FFFD)', () => {
    assert.equal(canonicalJson({ é: 1, z: 2, '\ufffd': 3, '😀': 4 }), '{"z":2,"é":1,"😀":4,"\ufffd":3}');
  });

  it('refuses what the store could not give back: non-finite numbers, bigints, undefined in arrays, class instances', () => {
    for (const value of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1n,
      [undefined],
      new Date(0),
      () => 1,
      { a: Symbol('s') },
    ]) {
      assert.throws(() => canonicalJson(value), TypeError);
    }
  });

  it('is the same text for a document and for what JSON.stringify/parse gives back, in any member order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        assert.equal(canonicalJson(JSON.parse(JSON.stringify(value))), text);
        assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
      }),
    );
  });
});

describe('event hash', () => {
  it('matches the known preimage and hash', () => {
    assert.equal(eventHashPreimage(FIRST).toString('hex'), FIRST_PREIMAGE);
    assert.equal(eventHash(FIRST), FIRST_HASH);
  });

  it('chains: the second event names the first, and its hash is the known one', () => {
    assert.equal(chainLinkOf(SECOND.metadata).kind, 'chained');
    assert.equal(eventHash(SECOND), SECOND_HASH);
  });

  it('does not depend on member order (a store may give the JSON back reordered)', () => {
    const reordered = {
      ...FIRST,
      data: Object.fromEntries(Object.entries(FIRST.data).reverse()),
      metadata: Object.fromEntries(Object.entries(FIRST.metadata).reverse()),
    };
    assert.equal(eventHash(reordered), FIRST_HASH);
  });

  it('changes when any hashed field changes', () => {
    const variants = [
      { ...FIRST, streamName: 'kl-systen' },
      { ...FIRST, eventId: '00000000-0000-4000-8000-000000000009' },
      { ...FIRST, type: 'SystemKeyRotated' },
      { ...FIRST, data: { ...FIRST.data, sequence: 2 } },
      { ...FIRST, metadata: { ...FIRST.metadata, actor: 'alicf' } },
      { ...FIRST, metadata: { ...FIRST.metadata, prevHash: FIRST_HASH } },
    ];
    const hashes = new Set(variants.map(eventHash));
    assert.equal(hashes.size, variants.length);
    assert.ok(!hashes.has(FIRST_HASH));
  });

  it('length-prefixes every field, so moving bytes from one field to the next changes the hash', () => {
    const a = { ...FIRST, streamName: 'kl-sys', eventId: `tem${FIRST.eventId}` };
    const b = { ...FIRST, streamName: 'kl-system', eventId: FIRST.eventId };
    assert.notEqual(eventHash(a), eventHash(b));
  });
});

describe('chain links in metadata', () => {
  const base = {
    actor: 'a',
    reason: null,
    correlationId: 'c',
    causationId: null,
    occurredAt: '2026-01-01T00:00:00.000Z',
  };

  it('reads version 2 with a hash or null as chained, version 1 without prevHash as legacy', () => {
    assert.deepEqual(chainLinkOf({ ...base, schemaVersion: 2, prevHash: FIRST_HASH }), {
      kind: 'chained',
      prevHash: FIRST_HASH,
    });
    assert.deepEqual(chainLinkOf({ ...base, schemaVersion: 2, prevHash: null }), {
      kind: 'chained',
      prevHash: null,
    });
    assert.deepEqual(chainLinkOf({ ...base, schemaVersion: 1 }), { kind: 'legacy' });
  });

  it('calls anything else malformed', () => {
    for (const metadata of [
      { ...base, schemaVersion: 2 },
      { ...base, schemaVersion: 2, prevHash: FIRST_HASH.toUpperCase() },
      { ...base, schemaVersion: 2, prevHash: FIRST_HASH.slice(1) },
      { ...base, schemaVersion: 1, prevHash: null },
      { ...base, schemaVersion: 3, prevHash: null },
      null,
      [],
      'x',
    ]) {
      assert.equal(chainLinkOf(metadata).kind, 'malformed', JSON.stringify(metadata));
    }
  });

  it('chainedMetadata sets version 2 and the link, keeping the rest', () => {
    assert.deepEqual(chainedMetadata({ ...base, schemaVersion: 1 }, FIRST_HASH), {
      ...base,
      schemaVersion: 2,
      prevHash: FIRST_HASH,
    });
  });
});

describe('checkpoint MAC', () => {
  it('is HMAC-SHA256 under HKDF(STK, info "keyledger checkpoint mac v1") of the preimage without `mac`', () => {
    const handle = stk();
    try {
      // The vector's checkpoint names the STK by its version-1 identity (its checksum).
      assert.equal(handle.identity, '3bdbe0fdbeaed3df');
      assert.ok(handle.names('9f128045002663f5'));
      assert.equal(
        handle.mac(CHECKPOINT_MAC_LABEL, checkpointMacMessage(CHECKPOINT)).toString('hex'),
        CHECKPOINT.data.mac,
      );
      assert.equal(eventHash(CHECKPOINT), CHECKPOINT_HASH);
    } finally {
      handle.dispose();
    }
  });

  it('changes with the label, the message and the key; an empty label is refused', () => {
    const handle = stk();
    const message = checkpointMacMessage(CHECKPOINT);
    try {
      const mac = handle.mac(CHECKPOINT_MAC_LABEL, message).toString('hex');
      assert.notEqual(handle.mac('keyledger other purpose', message).toString('hex'), mac);
      const changed = { ...CHECKPOINT, data: { ...CHECKPOINT.data, coveredPosition: '3' } };
      assert.notEqual(handle.mac(CHECKPOINT_MAC_LABEL, checkpointMacMessage(changed)).toString('hex'), mac);
      assert.throws(() => handle.mac('', message), TypeError);
    } finally {
      handle.dispose();
    }
    const other = softwareSystemKey('x', SecretBytes.copyOf(Buffer.alloc(32, 7)));
    try {
      assert.notEqual(other.mac(CHECKPOINT_MAC_LABEL, message).toString('hex'), CHECKPOINT.data.mac);
    } finally {
      other.dispose();
    }
  });

  it('parses the stored checkpoint into bigints, and names what is wrong with a malformed one', () => {
    const parsed = parseCheckpoint(CHECKPOINT.data);
    assert.ok(!('invalid' in parsed));
    assert.equal(parsed.coveredPosition, 2n);
    assert.deepEqual(parsed.heads, [{ stream: 'kl-system', revision: 1n, position: 2n, hash: SECOND_HASH }]);
    for (const bad of [
      { ...CHECKPOINT.data, coveredPosition: '02' },
      { ...CHECKPOINT.data, mac: 'zz' },
      { ...CHECKPOINT.data, extra: 1 },
      {
        ...CHECKPOINT.data,
        heads: [{ stream: 'kl-system', revision: '-1', position: '2', hash: SECOND_HASH }],
      },
    ]) {
      assert.ok('invalid' in parseCheckpoint(bad));
    }
  });
});
