import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { type KeyScope, keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { ManagedKeyData } from '../../src/providers/managedKeyProvider.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { FaultyProvider } from '../helpers/faultyProvider.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import { scaled } from './reliabilityScale.js';

/**
 * Provider faults under concurrent load (issue 15, part 3), in one process: with the provider down
 * or hanging, cached keys keep encrypting and decrypting and the provider is not even asked; wrong
 * answers (another scope's key, a key of the wrong length, other bytes under known metadata) are
 * refused with a typed error, write nothing, and leave the current key in use.
 */

const CUST = Buffer.from('tenant-faults').toString('base64');
const NAMESPACES = ['a', 'b', 'c', 'd'];
const at = (ns: string): KeyScope => keyScope(CUST, ns);
const LOAD = scaled(200, 5000);

describe('reliability: provider faults under concurrent load', () => {
  const opened: Ledger[] = [];
  after(async () => {
    for (const ledger of opened) await ledger.close();
  });

  async function setup() {
    const store = new MemoryEventStore();
    const scripted = new ScriptedProvider();
    const provider = new FaultyProvider(scripted);
    const ledger = await Ledger.open({
      store,
      provider,
      actor: 'faults',
      resolver: { dynamicLookup: false, providerTimeoutMs: 100 },
    });
    opened.push(ledger);
    await ledger.initialise();
    for (const ns of NAMESPACES) {
      scripted.setKey(at(ns), `k-${ns}`);
      await ledger.admin.enableKeyManagement(CUST, ns);
    }
    return { store, scripted, provider, ledger };
  }

  /** LOAD concurrent encrypts and decrypts over every scope; each must succeed. */
  async function load(ledger: Ledger, earlier: readonly Buffer[]): Promise<void> {
    const plaintext = randomBytes(64);
    const work = Array.from({ length: LOAD }, async (_, i) => {
      const ns = NAMESPACES[i % NAMESPACES.length] ?? 'a';
      if (i % 2 === 0) {
        const ct = await ledger.envelope.encrypt(plaintext, { custodian: CUST, namespaces: [ns] });
        assert.deepEqual(await ledger.envelope.decrypt(ct), plaintext);
      } else {
        await ledger.envelope.decrypt(earlier[i % earlier.length] as Buffer);
      }
    });
    await Promise.all(work);
  }

  it('cached keys keep resolving while the provider is down or hangs, without asking it', async () => {
    const { provider, ledger } = await setup();
    const earlier = await Promise.all(
      NAMESPACES.map((ns) => ledger.envelope.encrypt(randomBytes(32), { custodian: CUST, namespaces: [ns] })),
    );
    for (const health of ['down', 'hang'] as const) {
      provider.health = health;
      const calls = provider.totalCalls();
      await load(ledger, earlier);
      assert.equal(provider.totalCalls(), calls, `${health}: a cached key went to the provider`);
      assert.equal(provider.waiting, 0, `${health}: a call is left hanging`);
      provider.recover();
    }
  });

  it('a scope the provider fails on is recorded FAILED within the deadline, and refresh recovers it', async () => {
    const store = new MemoryEventStore();
    const scripted = new ScriptedProvider();
    const provider = new FaultyProvider(scripted);
    const ledger = await Ledger.open({
      store,
      provider,
      actor: 'faults',
      resolver: { dynamicLookup: true, providerTimeoutMs: 100 },
    });
    opened.push(ledger);
    await ledger.initialise();
    const target = { custodian: CUST, namespaces: ['cold'] };
    scripted.setKey(at('cold'), 'k-cold');
    provider.health = 'hang';
    // The resolver's deadline timer does not hold the process open (a server's socket does); this does.
    const keepAlive = setInterval(() => {}, 20);
    // Concurrent encrypts under a fresh scope while the provider hangs: each ends, typed, near the
    // 100 ms deadline (generous slack for a loaded machine), none waits for the provider.
    let timings: number[];
    try {
      timings = await Promise.all(
        Array.from({ length: scaled(50, 1000) }, async () => {
          const started = performance.now();
          await assert.rejects(ledger.envelope.encrypt(Buffer.from('x'), target), (error) =>
            isKeyledgerError(error),
          );
          return performance.now() - started;
        }),
      );
    } finally {
      clearInterval(keepAlive);
    }
    assert.ok(Math.max(...timings) < 5000, `slowest refusal ${Math.max(...timings).toFixed(0)} ms`);
    provider.recover();
    // The dynamic lookup's answer never arrived in time: FAILED is what the ledger holds now, or
    // nothing yet; either way a refresh with the provider back makes the key ACTIVE.
    await ledger.admin.refreshManagedKeys(CUST, 'cold').catch(() => null);
    let status = await ledger.admin.getScopeStatus(CUST, 'cold');
    if (status.marker !== 'ACTIVE') {
      await ledger.admin.enableKeyManagement(CUST, 'cold');
      status = await ledger.admin.getScopeStatus(CUST, 'cold');
    }
    assert.equal(status.marker, 'ACTIVE');
    assert.equal(status.keys.filter((k) => k.state === 'ACTIVE').length, 1);
    const ct = await ledger.envelope.encrypt(Buffer.from('after'), target);
    assert.deepEqual(await ledger.envelope.decrypt(ct), Buffer.from('after'));

    // An unknown scope the provider answers FAILED for is recorded FAILED, then recovered by refresh.
    await assert.rejects(
      ledger.envelope.encrypt(Buffer.from('x'), { custodian: CUST, namespaces: ['later'] }),
      (error) => isKeyledgerError(error, 'ERR_NO_ACTIVE_KEY'),
    );
    assert.equal((await ledger.admin.getScopeStatus(CUST, 'later')).marker, 'FAILED');
    scripted.setKey(at('later'), 'k-later');
    await ledger.admin.refreshManagedKeys(CUST, 'later');
    assert.equal((await ledger.admin.getScopeStatus(CUST, 'later')).marker, 'ACTIVE');
    await ledger.envelope.encrypt(Buffer.from('x'), { custodian: CUST, namespaces: ['later'] });
  });

  it('wrong answers are refused, write nothing, and leave the current key in use', async () => {
    const { store, scripted, ledger } = await setup();
    const before = await ledger.envelope.encrypt(Buffer.from('before'), {
      custodian: CUST,
      namespaces: ['a'],
    });
    const active = (await ledger.admin.getManagedKeys(CUST, 'a')).find((k) => k.state === 'ACTIVE');
    assert.ok(active);
    const answers: [string, (scope: KeyScope) => ManagedKeyData | null][] = [
      [
        "another scope's key",
        () => ({
          ...at('b'),
          state: 'ACTIVE',
          metadata: scripted.metadataFor(at('b'), 'k-b'),
          key: SecretBytes.copyOf(scripted.bytesOf('k-b') as Uint8Array),
        }),
      ],
      [
        'a key of the wrong length',
        (scope) => ({
          ...scope,
          state: 'ACTIVE',
          metadata: scripted.metadataFor(scope, 'short'),
          key: SecretBytes.adopt(new Uint8Array(randomBytes(16))),
        }),
      ],
      [
        'other bytes under the known metadata',
        (scope) => ({
          ...scope,
          state: 'ACTIVE',
          metadata: active.metadata,
          key: SecretBytes.adopt(new Uint8Array(randomBytes(32))),
        }),
      ],
    ];
    const codes: string[] = [];
    for (const [what, answer] of answers) {
      scripted.override = answer;
      const head = await store.headPosition();
      for (const attempt of [
        () => ledger.admin.rotateManagedKey(CUST, 'a'),
        () => ledger.admin.refreshManagedKeys(CUST, 'a'),
      ]) {
        let refusedWith: string | null = null;
        try {
          const result = await attempt();
          // A refresh may record the answer as FAILED rather than throw; it must never take the key.
          assert.ok(result === null || typeof result === 'object', what);
        } catch (error) {
          assert.ok(isKeyledgerError(error), `${what}: ${String(error)}`);
          refusedWith = error.code;
          codes.push(error.code);
          assert.equal(await store.headPosition(), head, `${what}: a refused answer wrote something`);
        }
        const keys = await ledger.admin.getManagedKeys(CUST, 'a');
        const nowActive = keys.filter((k) => k.state === 'ACTIVE');
        assert.ok(nowActive.length <= 1, what);
        assert.ok(
          nowActive.every((k) => k.keyId === active.keyId),
          `${what}: the wrong answer became the ACTIVE key (${refusedWith})`,
        );
      }
      scripted.override = null;
      assert.deepEqual(await ledger.envelope.decrypt(before), Buffer.from('before'), what);
    }
    assert.ok(codes.length > 0, 'no wrong answer was refused');
    console.log(`provider faults: wrong answers refused with ${[...new Set(codes)].join(', ')}`);
  });
});
