import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { DecryptionFailedError } from '../../src/crypto/decryptionFailedError.js';
import { Envelope, type EnvelopeOptions } from '../../src/crypto/envelope.js';
import { KeyledgerError } from '../../src/domain/errors.js';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { namespaceCandidates } from '../../src/ledger/namespaceCandidates.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type { ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { derive, LAYOUT, open as openIndependently, parse, seal } from '../helpers/envelopeFixtures.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const TARGET = { custodian: CUST, namespaces: [NS] };
const MiB = 1024 * 1024;

const opened: Ledger[] = [];
afterEach(async () => {
  for (const ledger of opened.splice(0)) await ledger.close();
});

interface SetupOptions {
  readonly store?: EventStore;
  readonly scripted?: ScriptedProvider;
  /** Use the ScriptedProvider itself (its DEKs are known to the test) instead of generated keys. */
  readonly scriptedKeys?: boolean;
  readonly envelope?: EnvelopeOptions;
  readonly initialise?: boolean;
}

/**
 * A ledger on a MemoryEventStore; by default its DEKs come from a GeneratedKeyProvider whose
 * system keys are a ScriptedProvider's (so the test can rotate the STK). Dynamic lookup is off:
 * only scopes the test enables have keys.
 */
async function setup(options: SetupOptions = {}) {
  const store = options.store ?? new MemoryEventStore();
  const scripted = options.scripted ?? new ScriptedProvider();
  const provider: ManagedKeyProvider = options.scriptedKeys
    ? scripted
    : new GeneratedKeyProvider({ systemKeys: scripted });
  const ledger = await Ledger.open({
    store,
    provider,
    actor: 'test',
    resolver: { dynamicLookup: false },
    ...(options.envelope === undefined ? {} : { envelope: options.envelope }),
  });
  opened.push(ledger);
  if (options.initialise ?? true) await ledger.initialise();
  return { store, scripted, ledger, envelope: ledger.envelope };
}

async function enable(ledger: Ledger, namespace = NS, custodian = CUST) {
  const result = await ledger.admin.enableKeyManagement(custodian, namespace);
  assert.equal(result.key?.state, 'ACTIVE');
  return result.key;
}

const keyIdOf = (ciphertext: Uint8Array) => parse(ciphertext).keyId.toString('hex');
const saltOf = (ciphertext: Uint8Array) => parse(ciphertext).salt.toString('hex');

/** Asserts the one decryption error: its class, code, message, and that it carries nothing else. */
function isDecryptionFailure(error: unknown): true {
  assert.ok(error instanceof DecryptionFailedError, `expected DecryptionFailedError, got ${String(error)}`);
  assert.ok(error instanceof KeyledgerError);
  assert.equal(error.code, 'ERR_DECRYPTION_FAILED');
  assert.equal(error.message, 'decryption failed');
  assert.equal(error.name, 'DecryptionFailedError');
  assert.equal(error.cause, undefined);
  assert.equal(Object.hasOwn(error, 'cause'), false);
  assert.deepEqual(error.details, {});
  return true;
}

async function rejectsDecryption(call: () => Promise<unknown>, message?: string): Promise<void> {
  await assert.rejects(call, isDecryptionFailure, message);
}

async function rejectsWithCode(call: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof KeyledgerError, `expected KeyledgerError, got ${String(error)}`);
    assert.ok(!(error instanceof DecryptionFailedError));
    assert.equal(error.code, code);
    return true;
  });
}

async function rejectsTypeError(call: () => Promise<unknown>): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof TypeError, `expected TypeError, got ${String(error)}`);
    assert.ok(!(error instanceof KeyledgerError));
    return true;
  });
}

describe('Envelope round trips', () => {
  it('ACTIVE key: round trip; the header names the key; every message has its own nonce', async () => {
    const { ledger, envelope } = await setup();
    const key = await enable(ledger);
    const plaintext = Buffer.from('hello, ledger');
    const a = await envelope.encrypt(plaintext, TARGET);
    const b = await envelope.encrypt(plaintext, TARGET);
    assert.equal(a.length, LAYOUT.overhead + plaintext.length);
    assert.equal(keyIdOf(a), key?.keyId);
    assert.deepEqual(parse(a).magic, Buffer.from('KLE'));
    assert.equal(parse(a).version, 1);
    assert.equal(parse(a).mode, 1);
    assert.notDeepEqual(parse(a).nonce, parse(b).nonce);
    assert.notDeepEqual(a, b);
    assert.deepEqual(await envelope.decrypt(a), plaintext);
    assert.deepEqual(await envelope.decrypt(b), plaintext);
    // A plain Uint8Array in, and a view into a larger buffer, work the same.
    assert.deepEqual(await envelope.decrypt(Uint8Array.from(a)), plaintext);
    const big = Buffer.alloc(a.length + 10, 0xee);
    a.copy(big, 5);
    assert.deepEqual(await envelope.decrypt(big.subarray(5, 5 + a.length)), plaintext);
    assert.deepEqual(
      await envelope.encrypt(new Uint8Array(0), TARGET).then((c) => envelope.decrypt(c)),
      Buffer.alloc(0),
    );
  });

  it('rotation: the old ciphertext decrypts with the now INACTIVE key; new ones use the new key', async () => {
    const { ledger, envelope } = await setup();
    const k1 = await enable(ledger);
    const old = await envelope.encrypt(Buffer.from('before rotation'), TARGET);
    const rotated = await ledger.admin.rotateManagedKey(CUST, NS);
    const k2 = rotated?.key;
    assert.ok(k2 !== undefined && k2.keyId !== k1?.keyId);
    assert.deepEqual(
      (await ledger.admin.getManagedKeys(CUST, NS)).map((k) => [k.keyId, k.state]),
      [
        [k1?.keyId, 'INACTIVE'],
        [k2.keyId, 'ACTIVE'],
      ],
    );
    const fresh = await envelope.encrypt(Buffer.from('after rotation'), TARGET);
    assert.equal(keyIdOf(old), k1?.keyId);
    assert.equal(keyIdOf(fresh), k2.keyId);
    assert.deepEqual(await envelope.decrypt(old), Buffer.from('before rotation'));
    assert.deepEqual(await envelope.decrypt(fresh), Buffer.from('after rotation'));
  });

  it('disable-key-management: decryption still works, encryption fails with ERR_NO_ACTIVE_KEY', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const ct = await envelope.encrypt(Buffer.from('kept readable'), TARGET);
    await ledger.admin.disableKeyManagement(CUST, NS);
    assert.deepEqual(
      (await ledger.admin.getManagedKeys(CUST, NS)).map((k) => k.state),
      ['INACTIVE'],
    );
    assert.deepEqual(await envelope.decrypt(ct), Buffer.from('kept readable'));
    await rejectsWithCode(() => envelope.encrypt(Buffer.from('x'), TARGET), 'ERR_NO_ACTIVE_KEY');
    // A scope never enabled has no key either.
    await rejectsWithCode(
      () => envelope.encrypt(Buffer.from('x'), { custodian: CUST, namespaces: ['never-enabled'] }),
      'ERR_NO_ACTIVE_KEY',
    );
  });

  it('DISABLED key: DecryptionFailedError (nothing more); re-enabled (INACTIVE) it decrypts again', async () => {
    const { ledger, envelope } = await setup();
    const k1 = await enable(ledger);
    const old = await envelope.encrypt(Buffer.from('secret'), TARGET);
    // Warm every cache: the decrypt path has derived this salt's key already.
    assert.deepEqual(await envelope.decrypt(old), Buffer.from('secret'));
    await ledger.admin.rotateManagedKey(CUST, NS);
    await ledger.admin.disableManagedKey(CUST, NS, k1?.metadataHash ?? '');
    assert.equal((await ledger.admin.getManagedKeys(CUST, NS))[0]?.state, 'DISABLED');
    await rejectsDecryption(() => envelope.decrypt(old));
    await rejectsDecryption(() => envelope.decrypt(old), 'and again (negative cache)');

    const reenabled = await ledger.admin.enableManagedKey(CUST, NS, k1?.metadataHash ?? '');
    assert.equal(reenabled.key.state, 'INACTIVE');
    assert.deepEqual(await envelope.decrypt(old), Buffer.from('secret'));
    // Re-enabled is INACTIVE, never ACTIVE: new messages keep the rotated key.
    const fresh = await envelope.encrypt(Buffer.from('new'), TARGET);
    assert.notEqual(keyIdOf(fresh), k1?.keyId);
  });

  it('disabling the ACTIVE key stops both encryption and decryption under it', async () => {
    const { ledger, envelope } = await setup();
    const k1 = await enable(ledger);
    const ct = await envelope.encrypt(Buffer.from('x'), TARGET);
    // Decrypt first, so the envelope's memo of the last key and salt is warm.
    assert.deepEqual(await envelope.decrypt(ct), Buffer.from('x'));
    await ledger.admin.disableManagedKey(CUST, NS, k1?.metadataHash ?? '');
    await rejectsDecryption(() => envelope.decrypt(ct));
    await rejectsWithCode(() => envelope.encrypt(Buffer.from('x'), TARGET), 'ERR_NO_ACTIVE_KEY');
  });

  it('a DISABLED key also fails in another process (cold caches), and decrypts there once re-enabled', async () => {
    const { ledger, envelope, store, scripted } = await setup();
    const k1 = await enable(ledger);
    const ct = await envelope.encrypt(Buffer.from('elsewhere'), TARGET);
    await ledger.admin.rotateManagedKey(CUST, NS);
    await ledger.admin.disableManagedKey(CUST, NS, k1?.metadataHash ?? '');
    const other = await setup({ store, scripted, initialise: false });
    await rejectsDecryption(() => other.envelope.decrypt(ct));
    await ledger.admin.enableManagedKey(CUST, NS, k1?.metadataHash ?? '');
    await other.ledger.waitForPosition(ledger.position);
    assert.deepEqual(await other.envelope.decrypt(ct), Buffer.from('elsewhere'));
  });

  it('STK rotation: new DEKs are wrapped under the new STK; old and new ciphertexts decrypt, warm and cold', async () => {
    const { ledger, envelope, store, scripted } = await setup();
    const k1 = await enable(ledger);
    const before = await envelope.encrypt(Buffer.from('under stk-1'), TARGET);
    scripted.rotateSystemKey('stk-2');
    const change = await ledger.admin.rotateSTK();
    assert.notEqual(change.identity, k1?.stkIdentity);
    const k2 = (await ledger.admin.rotateManagedKey(CUST, NS))?.key;
    assert.equal(k2?.stkIdentity, change.identity, 'the new DEK is wrapped under the new STK');
    const k3 = await enable(ledger, 'invoices');
    assert.equal(k3?.stkIdentity, change.identity);
    const after = await envelope.encrypt(Buffer.from('under stk-2'), TARGET);
    const other = await envelope.encrypt(Buffer.from('invoices'), {
      custodian: CUST,
      namespaces: ['invoices'],
    });
    assert.equal(keyIdOf(after), k2?.keyId);
    assert.equal(keyIdOf(other), k3?.keyId);
    for (const [ct, text] of [
      [before, 'under stk-1'],
      [after, 'under stk-2'],
      [other, 'invoices'],
    ] as const) {
      assert.deepEqual(await envelope.decrypt(ct), Buffer.from(text));
    }
    // Cold: L1 cleared, so the old DEK must be unwrapped with the old STK again.
    await ledger.admin.clearManagedKeyDataCache();
    assert.deepEqual(await envelope.decrypt(before), Buffer.from('under stk-1'));
    assert.deepEqual(await envelope.decrypt(after), Buffer.from('under stk-2'));
    // Another process on the same store, with nothing cached at all.
    const cold = await setup({ store, scripted, initialise: false });
    assert.deepEqual(await cold.envelope.decrypt(before), Buffer.from('under stk-1'));
    assert.deepEqual(await cold.envelope.decrypt(after), Buffer.from('under stk-2'));
    assert.deepEqual(await cold.envelope.decrypt(other), Buffer.from('invoices'));
    const fromCold = await cold.envelope.encrypt(Buffer.from('cold'), TARGET);
    assert.equal(keyIdOf(fromCold), k2?.keyId);
    assert.deepEqual(await envelope.decrypt(fromCold), Buffer.from('cold'));
  });

  it('namespace fallback: the header names the active key of the first candidate scope that has one', async () => {
    const { ledger, envelope } = await setup();
    const candidates = namespaceCandidates({ table: 'orders', family: 'items' });
    assert.deepEqual(candidates, ['orders/items', 'orders', '*']);
    const target = { custodian: CUST, namespaces: candidates };
    const global = await enable(ledger, '*');
    const viaGlobal = await envelope.encrypt(Buffer.from('global'), target);
    assert.equal(keyIdOf(viaGlobal), global?.keyId);

    const table = await enable(ledger, 'orders');
    const viaTable = await envelope.encrypt(Buffer.from('table'), target);
    assert.equal(keyIdOf(viaTable), table?.keyId);

    const family = await enable(ledger, 'orders/items');
    const viaFamily = await envelope.encrypt(Buffer.from('family'), target);
    assert.equal(keyIdOf(viaFamily), family?.keyId);

    // Only the family scope's key rotates: the target follows it.
    const rotated = (await ledger.admin.rotateManagedKey(CUST, 'orders/items'))?.key;
    const viaRotated = await envelope.encrypt(Buffer.from('rotated'), target);
    assert.equal(keyIdOf(viaRotated), rotated?.keyId);

    // Family scope disabled: back to the table scope.
    await ledger.admin.disableKeyManagement(CUST, 'orders/items');
    const fallenBack = await envelope.encrypt(Buffer.from('fallen back'), target);
    assert.equal(keyIdOf(fallenBack), table?.keyId);

    // A target naming only one scope uses that scope's key even when another would come first.
    const onlyGlobal = await envelope.encrypt(Buffer.from('g'), { custodian: CUST, namespaces: ['*'] });
    assert.equal(keyIdOf(onlyGlobal), global?.keyId);

    for (const [ct, text] of [
      [viaGlobal, 'global'],
      [viaTable, 'table'],
      [viaFamily, 'family'],
      [viaRotated, 'rotated'],
      [fallenBack, 'fallen back'],
      [onlyGlobal, 'g'],
    ] as const) {
      assert.deepEqual(await envelope.decrypt(ct), Buffer.from(text));
    }
  });

  it('AAD: round trip; missing, different or extra AAD fails; empty AAD is the same as none', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const aad = Buffer.from('table=orders;row=42');
    const withAad = await envelope.encrypt(Buffer.from('bound'), { ...TARGET, aad });
    assert.deepEqual(await envelope.decrypt(withAad, { aad }), Buffer.from('bound'));
    assert.deepEqual(await envelope.decrypt(withAad, { aad: Uint8Array.from(aad) }), Buffer.from('bound'));
    assert.equal(withAad.length, LAYOUT.overhead + 5, 'the AAD is not stored');
    await rejectsDecryption(() => envelope.decrypt(withAad), 'missing');
    await rejectsDecryption(() => envelope.decrypt(withAad, {}), 'missing (explicit options)');
    await rejectsDecryption(() => envelope.decrypt(withAad, { aad: new Uint8Array(0) }), 'empty');
    await rejectsDecryption(
      () => envelope.decrypt(withAad, { aad: Buffer.from('table=orders;row=43') }),
      'different',
    );
    await rejectsDecryption(
      () => envelope.decrypt(withAad, { aad: aad.subarray(0, aad.length - 1) }),
      'prefix',
    );
    await rejectsDecryption(
      () => envelope.decrypt(withAad, { aad: Buffer.concat([aad, Buffer.of(0)]) }),
      'longer',
    );

    const without = await envelope.encrypt(Buffer.from('unbound'), TARGET);
    await rejectsDecryption(() => envelope.decrypt(without, { aad }), 'extra');
    await rejectsDecryption(
      () => envelope.decrypt(without, { aad: Buffer.of(0) }),
      'one zero byte is not none',
    );
    assert.deepEqual(await envelope.decrypt(without, { aad: new Uint8Array(0) }), Buffer.from('unbound'));
    const emptyAad = await envelope.encrypt(Buffer.from('empty'), { ...TARGET, aad: new Uint8Array(0) });
    assert.deepEqual(await envelope.decrypt(emptyAad), Buffer.from('empty'));

    // The AAD is bound after the header: moving header bytes into the AAD does not work.
    await rejectsDecryption(() =>
      envelope.decrypt(withAad.subarray(1), { aad: Buffer.concat([withAad.subarray(0, 1), aad]) }),
    );
  });

  it('empty plaintext: 113 bytes, decrypts to an empty buffer, still authenticated', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const ct = await envelope.encrypt(new Uint8Array(0), TARGET);
    assert.equal(ct.length, LAYOUT.overhead);
    const pt = await envelope.decrypt(ct);
    assert.ok(Buffer.isBuffer(pt));
    assert.equal(pt.length, 0);
    const flipped = Buffer.from(ct);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    await rejectsDecryption(() => envelope.decrypt(flipped));
  });

  it('1 MiB plaintext round trips (and with AAD)', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const plaintext = randomBytes(MiB);
    const ct = await envelope.encrypt(plaintext, TARGET);
    assert.equal(ct.length, LAYOUT.overhead + MiB);
    assert.ok(!ct.subarray(LAYOUT.headerBytes, LAYOUT.headerBytes + 64).equals(plaintext.subarray(0, 64)));
    assert.deepEqual(await envelope.decrypt(ct), plaintext);
    const aad = randomBytes(4096);
    const withAad = await envelope.encrypt(plaintext, { ...TARGET, aad });
    assert.deepEqual(await envelope.decrypt(withAad, { aad }), plaintext);
    const tampered = Buffer.from(ct);
    tampered[LAYOUT.headerBytes + MiB / 2] = (tampered[LAYOUT.headerBytes + MiB / 2] ?? 0) ^ 0x40;
    await rejectsDecryption(() => envelope.decrypt(tampered));
  });

  it('derived-key budget: with messagesPerDerivedKey 3 the salt changes every 3 messages; all decrypt', async () => {
    const { ledger, envelope } = await setup({ envelope: { messagesPerDerivedKey: 3 } });
    const key = await enable(ledger);
    const messages = Array.from({ length: 10 }, (_, i) => Buffer.from(`message ${i}`));
    const cts: Buffer[] = [];
    for (const m of messages) cts.push(await envelope.encrypt(m, TARGET));
    const salts = cts.map(saltOf);
    const groups = [salts.slice(0, 3), salts.slice(3, 6), salts.slice(6, 9), salts.slice(9)];
    for (const group of groups)
      assert.equal(new Set(group).size, 1, `one salt per group: ${group.join(',')}`);
    assert.equal(new Set(groups.map((g) => g[0])).size, 4, 'every group has a new salt');
    assert.ok(
      cts.every((ct) => keyIdOf(ct) === key?.keyId),
      'same DEK throughout',
    );
    assert.equal(new Set(cts.map((ct) => parse(ct).nonce.toString('hex'))).size, 10);
    // All decrypt, in any order, and through a fresh Envelope (nothing derived cached).
    for (const i of [9, 0, 5, 3, 8, 1, 7, 2, 6, 4]) {
      assert.deepEqual(await envelope.decrypt(cts[i] as Buffer), messages[i]);
    }
    const fresh = new Envelope(ledger.resolver);
    for (const [i, ct] of cts.entries()) assert.deepEqual(await fresh.decrypt(ct), messages[i]);
  });

  it('encryptParts joined is a ciphertext encrypt could have made; many salts decrypt in any order', async () => {
    const { ledger, envelope } = await setup({ envelope: { messagesPerDerivedKey: 1 } });
    await enable(ledger);
    const parts = await envelope.encryptParts(Buffer.from('parts'), TARGET);
    assert.deepEqual(
      parts.map((p) => p.length),
      [97, 5, 16],
    );
    assert.deepEqual(await envelope.decrypt(Buffer.concat(parts)), Buffer.from('parts'));
    // 70 messages, each under its own salt: more than the per-key derived-key cache holds (64).
    const messages = await Promise.all(
      Array.from({ length: 70 }, (_, i) => envelope.encrypt(Buffer.from(`m${i}`), TARGET)),
    );
    assert.equal(new Set(messages.map(saltOf)).size, 70);
    for (const round of [0, 1]) {
      for (const [i, ct] of messages.entries()) {
        assert.deepEqual(await envelope.decrypt(ct), Buffer.from(`m${i}`), `round ${round} message ${i}`);
      }
    }
    assert.deepEqual(await envelope.decrypt(messages[0] ?? Buffer.alloc(0)), Buffer.from('m0'));
  });

  it('the default budget keeps one salt across many messages', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const salts = new Set<string>();
    for (let i = 0; i < 200; i++) salts.add(saltOf(await envelope.encrypt(Buffer.of(i), TARGET)));
    assert.equal(salts.size, 1);
  });

  it('messagesPerDerivedKey outside 1..2^32 is a TypeError', async () => {
    const { ledger } = await setup();
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 32 + 1, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new Envelope(ledger.resolver, { messagesPerDerivedKey: bad }),
        TypeError,
        String(bad),
      );
    }
    for (const good of [1, 2 ** 32]) new Envelope(ledger.resolver, { messagesPerDerivedKey: good });
  });
});

describe('Envelope under concurrency and unusual namespaces', () => {
  /** A ciphertext naming an unknown key id: its lookup puts a negative entry in L1's key cache. */
  function unknownKeyCiphertext(like: Buffer): Buffer {
    const out = Buffer.from(like);
    randomBytes(16).copy(out, LAYOUT.offsets.keyId);
    return out;
  }

  /** A ledger whose L1 holds two keys, with the scope enabled. */
  async function openWithSmallL1(): Promise<Ledger> {
    const ledger = await Ledger.open({
      store: new MemoryEventStore(),
      provider: new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() }),
      actor: 'test',
      resolver: { dynamicLookup: false },
      cache: { maxKeys: 2 },
    });
    opened.push(ledger);
    await ledger.initialise();
    await enable(ledger);
    return ledger;
  }

  it('a valid ciphertext decrypts while concurrent lookups churn L1', async () => {
    const ledger = await openWithSmallL1();
    const ct = await ledger.envelope.encrypt(Buffer.from('valid'), TARGET);
    assert.deepEqual(await ledger.envelope.decrypt(ct), Buffer.from('valid'), 'warm: the key is in L1');
    const valid = ledger.envelope.decrypt(ct);
    // Started after it, in the same tick: three unknown key ids push the key out of a 2-key L1.
    const garbage = [1, 2, 3].map(() => ledger.envelope.decrypt(unknownKeyCiphertext(ct)).catch(() => null));
    try {
      assert.deepEqual(await valid, Buffer.from('valid'));
    } finally {
      await Promise.all(garbage);
    }
  });

  it('encrypt succeeds while concurrent lookups churn L1', async () => {
    const ledger = await openWithSmallL1();
    const sample = await ledger.envelope.encrypt(Buffer.from('x'), TARGET);
    await ledger.admin.clearManagedKeyDataCache(); // the next encrypt misses L1 and awaits
    const encrypting = ledger.envelope.encrypt(Buffer.from('y'), TARGET);
    const garbage = [1, 2, 3].map(() =>
      ledger.envelope.decrypt(unknownKeyCiphertext(sample)).catch(() => null),
    );
    try {
      const ct = await encrypting;
      assert.deepEqual(await ledger.envelope.decrypt(ct), Buffer.from('y'));
    } finally {
      await Promise.all(garbage);
    }
  });

  it('a namespace containing NUL is not confused with a list of candidates (Envelope target cache)', async () => {
    const { ledger, envelope } = await setup();
    const a = await enable(ledger, 'a');
    const ab = await enable(ledger, 'a\0b');
    assert.notEqual(a?.keyId, ab?.keyId);
    const viaList = await envelope.encrypt(Buffer.from('x'), { custodian: CUST, namespaces: ['a', 'b'] });
    assert.equal(keyIdOf(viaList), a?.keyId);
    const viaNul = await envelope.encrypt(Buffer.from('x'), { custodian: CUST, namespaces: ['a\0b'] });
    assert.equal(keyIdOf(viaNul), ab?.keyId);
  });

  it('a namespace containing NUL is not confused with a list of candidates (resolver target cache key)', async () => {
    const { ledger } = await setup();
    const x = await enable(ledger, 'x');
    const odd = `x\0${CUST}:y`;
    const xy = await enable(ledger, odd);
    assert.notEqual(x?.keyId, xy?.keyId);
    // Two Envelopes, so that only the resolver's cache is shared.
    const first = new Envelope(ledger.resolver);
    const second = new Envelope(ledger.resolver);
    const viaList = await first.encrypt(Buffer.from('x'), { custodian: CUST, namespaces: ['x', 'y'] });
    assert.equal(keyIdOf(viaList), x?.keyId);
    const viaOdd = await second.encrypt(Buffer.from('x'), { custodian: CUST, namespaces: [odd] });
    assert.equal(keyIdOf(viaOdd), xy?.keyId);
  });
});

describe('Envelope misuse and foreign ciphertexts', () => {
  it('API misuse is a TypeError', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const ct = await envelope.encrypt(Buffer.from('x'), TARGET);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong types, as untyped callers pass them
    const loose = envelope as any;
    for (const plaintext of [
      'text',
      42,
      null,
      undefined,
      [1, 2, 3],
      new ArrayBuffer(4),
      new DataView(new ArrayBuffer(4)),
    ]) {
      await rejectsTypeError(() => loose.encrypt(plaintext, TARGET));
    }
    for (const ciphertext of [ct.toString('hex'), 42, null, undefined, Array.from(ct), ct.buffer]) {
      await rejectsTypeError(() => loose.decrypt(ciphertext));
    }
    for (const aad of ['aad', 42, null, [1], new ArrayBuffer(1)]) {
      await rejectsTypeError(() => loose.encrypt(Buffer.from('x'), { ...TARGET, aad }));
      await rejectsTypeError(() => loose.decrypt(ct, { aad }));
    }
    for (const options of [
      {},
      { custodian: CUST },
      { namespaces: [NS] },
      { custodian: 42, namespaces: [NS] },
      { custodian: CUST, namespaces: NS },
      undefined,
      null,
    ]) {
      await rejectsTypeError(() => loose.encrypt(Buffer.from('x'), options));
    }
  });

  it('bad custodian or namespace values give their KeyledgerError codes', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const x = Buffer.from('x');
    await rejectsWithCode(
      () => envelope.encrypt(x, { custodian: '', namespaces: [NS] }),
      'ERR_INVALID_CUSTODIAN',
    );
    await rejectsWithCode(
      () => envelope.encrypt(x, { custodian: 'not base64!', namespaces: [NS] }),
      'ERR_INVALID_CUSTODIAN',
    );
    await rejectsWithCode(
      () => envelope.encrypt(x, { custodian: Buffer.alloc(256, 1).toString('base64'), namespaces: [NS] }),
      'ERR_INVALID_CUSTODIAN',
    );
    await rejectsWithCode(
      () => envelope.encrypt(x, { custodian: CUST, namespaces: [] }),
      'ERR_INVALID_ARGUMENT',
    );
    await rejectsWithCode(
      () =>
        envelope.encrypt(x, { custodian: CUST, namespaces: Array.from({ length: 9 }, (_, i) => `n${i}`) }),
      'ERR_INVALID_ARGUMENT',
    );
    await rejectsWithCode(
      () => envelope.encrypt(x, { custodian: CUST, namespaces: [''] }),
      'ERR_INVALID_NAMESPACE',
    );
    await rejectsWithCode(
      () => envelope.encrypt(x, { custodian: CUST, namespaces: [NS, 'x'.repeat(256)] }),
      'ERR_INVALID_NAMESPACE',
    );
    // The same target once valid still works afterwards (nothing bad was cached).
    assert.deepEqual(await envelope.decrypt(await envelope.encrypt(x, TARGET)), x);
  });

  it('a ciphertext for a key of another ledger is a DecryptionFailedError', async () => {
    const a = await setup();
    const b = await setup();
    await enable(a.ledger);
    await enable(b.ledger);
    const fromB = await b.envelope.encrypt(Buffer.from('ledger b'), TARGET);
    assert.deepEqual(await b.envelope.decrypt(fromB), Buffer.from('ledger b'));
    await rejectsDecryption(() => a.envelope.decrypt(fromB));
  });

  it('a ciphertext naming a key id this ledger has, made with another ledger’s DEK, fails (commitment)', async () => {
    // ScriptedProvider key ids depend only on scope and name, so both ledgers have key id X with
    // different DEKs: the header names a key A knows, but the commitment is for B's bytes.
    const a = await setup({ scriptedKeys: true });
    const b = await setup({ scriptedKeys: true });
    a.scripted.setKey(keyScope(CUST, NS), 'k1');
    b.scripted.setKey(keyScope(CUST, NS), 'k1');
    const ka = await enable(a.ledger);
    const kb = await enable(b.ledger);
    assert.equal(ka?.keyId, kb?.keyId);
    assert.notDeepEqual(a.scripted.bytesOf('k1'), b.scripted.bytesOf('k1'));
    const fromB = await b.envelope.encrypt(Buffer.from('ledger b'), TARGET);
    assert.equal(keyIdOf(fromB), ka?.keyId);
    await rejectsDecryption(() => a.envelope.decrypt(fromB));
  });

  it('an unknown key id is a DecryptionFailedError', async () => {
    const { ledger, envelope } = await setup();
    await enable(ledger);
    const ct = await envelope.encrypt(Buffer.from('x'), TARGET);
    const other = Buffer.from(ct);
    randomBytes(16).copy(other, LAYOUT.offsets.keyId);
    await rejectsDecryption(() => envelope.decrypt(other));
  });

  it('key commitment: a hand-built ciphertext whose GCM tag verifies but whose commitment is wrong is refused', async () => {
    const { ledger, envelope, scripted } = await setup({ scriptedKeys: true });
    scripted.setKey(keyScope(CUST, NS), 'k1');
    const key = await enable(ledger);
    const dek = scripted.bytesOf('k1');
    assert.ok(dek !== undefined && key !== null && key !== undefined);
    const base = {
      dek,
      keyId: Buffer.from(key.keyId, 'hex'),
      salt: randomBytes(32),
      nonce: randomBytes(12),
      plaintext: Buffer.from('committed'),
      aad: Buffer.from('row 7'),
    };
    // Control: built by hand with the right commitment, it decrypts, so the construction is right.
    assert.deepEqual(await envelope.decrypt(seal(base), { aad: base.aad }), base.plaintext);
    // And Envelope's own output opens with the independent implementation.
    const own = await envelope.encrypt(base.plaintext, { ...TARGET, aad: base.aad });
    assert.deepEqual(openIndependently(dek, own, base.aad), base.plaintext);

    const right = derive(dek, base.salt, base.keyId).commitment;
    const wrongCommitments = {
      'commitment of another DEK': derive(randomBytes(32), base.salt, base.keyId).commitment,
      'commitment for another salt': derive(dek, randomBytes(32), base.keyId).commitment,
      'commitment for another key id': derive(dek, base.salt, randomBytes(16)).commitment,
      'first bit altered': Buffer.from(right).map((b, i) => (i === 0 ? b ^ 0x80 : b)),
      'last bit altered': Buffer.from(right).map((b, i) => (i === 31 ? b ^ 0x01 : b)),
      'the derived encryption key itself': derive(dek, base.salt, base.keyId).key,
      zeros: Buffer.alloc(32),
    };
    for (const [what, commitment] of Object.entries(wrongCommitments)) {
      const forged = seal({ ...base, commitment });
      assert.deepEqual(
        openIndependently(dek, forged, base.aad, 'gcm-only'),
        base.plaintext,
        `${what}: tag verifies`,
      );
      await rejectsDecryption(() => envelope.decrypt(forged, { aad: base.aad }), what);
    }
  });
});
