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
