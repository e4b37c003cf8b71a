import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { KeyledgerApi } from '../../src/operations/keyledgerApi.js';
import type { StoreAccess } from '../../src/operations/operation.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * One suite, two targets (issue 12): the KeymetaAdmin and resolver/envelope behaviours through
 * KeyledgerApi, run against the in-process LedgerApi (keyledgerApi.local.test.ts) and against
 * KeyledgerClient talking to a real server (keyledgerApi.remote.test.ts). Both see the same results
 * and the same error codes; nothing here knows which one it talks to.
 */

/** What a target gives the suite. */
export interface ApiTarget {
  readonly api: KeyledgerApi;
  /** The provider behind the target's ledger: the suite decides which key a scope has. */
  readonly provider: ScriptedProvider;
  /** Who the target records as the actor (the API's actor, or the server's authenticated principal). */
  readonly actor: string;
  /** The store's head position: a refused call must leave it where it was. */
  head(): Promise<bigint>;
  close(): Promise<void>;
}

/** A ledger for a target: memory store, scripted provider, initialised; no dynamic lookup (so a miss writes nothing). */
export async function contractLedger(actor = 'ledger-default') {
  const store = new MemoryEventStore();
  const provider = new ScriptedProvider();
  const ledger = await Ledger.open({
    store,
    provider,
    actor,
    checkpointEvery: 0,
    resolver: { dynamicLookup: false },
  });
  await ledger.initialise();
  const access: StoreAccess = {
    store,
    prefix: ledger.streamNames.prefix,
    provider: () => provider,
    checkpointEvery: 0,
    anchorFile: undefined,
  };
  return {
    store,
    provider,
    ledger,
    access,
    head: () => store.headPosition(),
    close: async () => {
      await ledger.close();
      await store.close();
    },
  };
}

const TENANT = Buffer.from('tenant-1').toString('base64');
const OTHER = Buffer.from('tenant-2').toString('base64');
const SCOPE = `${TENANT}:orders`;

async function codeOf(call: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await call();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  assert.fail('expected a failure');
}

/** enable-key-management's result for one scope (asked without `scopes`). */
function oneScope<R extends object>(result: R): Exclude<R, { results: unknown }> {
  assert.ok(!('results' in result));
  return result as Exclude<R, { results: unknown }>;
}

export function testKeyledgerApi(name: string, factory: () => Promise<ApiTarget>): void {
  describe(`KeyledgerApi contract: ${name}`, () => {
    let t: ApiTarget;
    before(async () => {
      t = await factory();
    });
    after(async () => {
      await t.close();
    });

    /** Asserts the call fails with `code` and that nothing was appended. */
    async function refused(code: string, call: () => Promise<unknown>) {
      const head = await t.head();
      assert.equal(await codeOf(call), code);
      assert.equal(await t.head(), head, 'nothing may be written');
    }

    describe('KeymetaAdmin', () => {
      it('enables several scopes in one call, each reported; a bad one refuses all, writing nothing', async () => {
        const names = ['bulk-a', 'bulk-b', 'bulk-c'];
        for (const ns of names) t.provider.setKey(keyScope(TENANT, ns), `${ns}-k`);
        await refused('ERR_INVALID_CUSTODIAN', () =>
          t.api.call('enable-key-management', { scopes: [`${TENANT}:bulk-a`, 'not base64!:x'] }),
        );
        await refused('ERR_INVALID_ARGUMENT', () => t.api.call('enable-key-management', { scopes: [] }));
        const result = await t.api.call('enable-key-management', {
          scope: `${TENANT}:bulk-a`,
          scopes: [`${TENANT}:bulk-b`, `${TENANT}:bulk-c`],
        });
        assert.ok('results' in result);
        assert.equal(result.enabled, 3);
        assert.deepEqual(
          result.results.map((r) => [r.scope, r.marker, r.position !== null]),
          names.map((ns) => [`${TENANT}:${ns}`, 'ACTIVE', true]),
        );
        const again = await t.api.call('enable-key-management', { scopes: [`${TENANT}:bulk-b`] });
        assert.ok('results' in again);
        assert.equal(again.results[0]?.position, null, 'enabling an enabled scope writes nothing');
      });

      it('enables, shows, rotates, disables and re-enables a key; list-scopes and history with actor', async () => {
        t.provider.setKey(keyScope(TENANT, 'orders'), 'k1');
        const enabled = await t.api.call(
          'enable-key-management',
          { scope: 'name=tenant-1:orders' },
          { reason: 'onboarding', requestId: 'onboard-tenant-1' },
        );
        // One scope (no `scopes`): the one-scope result.
        assert.ok(!('results' in enabled));
        assert.equal(enabled.marker, 'ACTIVE');
        assert.equal(enabled.key?.state, 'ACTIVE');
        assert.match(enabled.position ?? '', /^\d+$/);
        const k1 = enabled.key;
        assert.ok(k1);

        const again = oneScope(await t.api.call('enable-key-management', { scope: SCOPE }));
        assert.equal(again.position, null, 'enabling an enabled scope writes nothing');

        const status = await t.api.call('show-key-status', { scope: SCOPE });
        assert.equal(status.marker, 'ACTIVE');
        assert.deepEqual(
          status.keys.map((k) => [k.keyId, k.state]),
          [[k1.keyId, 'ACTIVE']],
        );

        t.provider.setKey(keyScope(TENANT, 'orders'), 'k2');
        // Any text is a reason: non-ASCII, a literal %, something that looks like an escape.
        const reason = 'Schlüssel für Q3 — 100% rollout %41 ✓';
        const rotated = await t.api.call('rotate-managed-key', { scope: SCOPE }, { reason });
        assert.equal(rotated.rotated, true);
        assert.deepEqual(
          rotated.keys.map((k) => k.state),
          ['INACTIVE', 'ACTIVE'],
        );

        const disabled = await t.api.call('disable-managed-key', { scope: SCOPE, key: k1.keyId });
        assert.equal(disabled.key.state, 'DISABLED');
        assert.equal(disabled.key.metadataHash, k1.metadataHash);
        const reenabled = await t.api.call('enable-managed-key', { scope: SCOPE, key: k1.metadataHash });
        assert.equal(reenabled.key.state, 'INACTIVE');

        const scopes = await t.api.call('list-scopes', {});
        const listed = scopes.find((s) => s.custodian === TENANT && s.namespace === 'orders');
        assert.equal(listed?.marker, 'ACTIVE');

        const history = await t.api.call('history', { scope: SCOPE });
        assert.deepEqual(
          history.map((h) => h.type),
          ['KeyManagementEnabled', 'ManagedKeyRotated', 'ManagedKeyDisabled', 'ManagedKeyReenabled'],
        );
        assert.ok(
          history.every((h) => h.actor === t.actor),
          'every event names the target’s actor',
        );
        assert.equal(history[0]?.reason, 'onboarding');
        assert.equal(history[1]?.reason, reason, 'the reason arrives exactly as given');
        assert.equal(history[0]?.correlationId, 'onboard-tenant-1', 'the request id is the correlation id');
        assert.notEqual(history[1]?.correlationId, 'onboard-tenant-1');
        const ofKey = await t.api.call('history', { scope: SCOPE, key: k1.keyId });
        const aboutK1 = ofKey.filter((h) => h.type !== 'KeyMaterialWrapped');
        assert.ok(aboutK1.length >= 3, 'the key was enabled, disabled and re-enabled');
        assert.ok(aboutK1.every((h) => h.keys.some((k) => k.metadataHash === k1.metadataHash)));

        const off = await t.api.call('disable-key-management', { scope: SCOPE });
        assert.ok(off.keys.every((k) => k.state !== 'ACTIVE'));
        assert.equal((await t.api.call('show-key-status', { scope: SCOPE })).marker, 'DISABLED');
      });

      it('refuses bad input and rule violations with the ledger’s codes, writing nothing', async () => {
        t.provider.setKey(keyScope(TENANT, 'refusals'), 'r1');
        const enabled = oneScope(await t.api.call('enable-key-management', { scope: `${TENANT}:refusals` }));
        const key = enabled.key?.keyId ?? '';
        await refused('ERR_INVALID_CUSTODIAN', () =>
          t.api.call('enable-key-management', { scope: 'tenant-1:orders' }),
        );
        await refused('ERR_INVALID_NAMESPACE', () =>
          t.api.call('show-key-status', { scope: `${TENANT}:${'x'.repeat(300)}` }),
        );
        await refused('ERR_INVALID_METADATA', () =>
          t.api.call('disable-managed-key', { scope: `${TENANT}:refusals`, key: 'short' }),
        );
        await refused('ERR_INVALID_ARGUMENT', () =>
          t.api.call('show-key-status', { scope: SCOPE, extra: 1 } as unknown as { scope: string }),
        );
        await refused('ERR_INVALID_ARGUMENT', () =>
          t.api.call('rotate-managed-key', {} as unknown as { scope: string }),
        );
        await refused('ERR_KEY_NOT_FOUND', () =>
          t.api.call('disable-managed-key', { scope: `${TENANT}:refusals`, key: 'a'.repeat(32) }),
        );
        await refused('ERR_KEY_NOT_DISABLED', () =>
          t.api.call('enable-managed-key', { scope: `${TENANT}:refusals`, key }),
        );
        await refused('ERR_KEY_MANAGEMENT_NOT_ENABLED', () =>
          t.api.call('rotate-managed-key', { scope: `${OTHER}:nowhere` }),
        );
        await t.api.call('disable-managed-key', { scope: `${TENANT}:refusals`, key });
        await refused('ERR_KEY_ALREADY_DISABLED', () =>
          t.api.call('disable-managed-key', { scope: `${TENANT}:refusals`, key }),
        );
        await refused('ERR_INVALID_ARGUMENT', () =>
          t.api.call('init' as 'list-scopes', {} as Record<string, never>),
        );
        await refused('ERR_INVALID_ARGUMENT', () =>
          t.api.call('clear-cache', {}, { requestId: 'has space' }),
        );
      });
    });

    describe('resolver and envelope', () => {
      before(async () => {
        t.provider.setKey(keyScope(TENANT, 'invoices'), 'inv1');
        await t.api.call('enable-key-management', { scope: `${TENANT}:invoices` });
      });

      it('resolves the first candidate with an ACTIVE key; none → ERR_NO_ACTIVE_KEY', async () => {
        const r = await t.api.call('resolve', { custodian: TENANT, namespace: ['nowhere', 'invoices'] });
        assert.equal(r.namespace, 'invoices');
        assert.equal(r.candidate, 1);
        assert.deepEqual(r.tried, ['nowhere', 'invoices']);
        assert.equal(r.state, 'ACTIVE');
        await refused('ERR_NO_ACTIVE_KEY', () =>
          t.api.call('resolve', { custodian: OTHER, namespace: ['invoices'] }),
        );
        await refused('ERR_INVALID_ARGUMENT', () =>
          t.api.call('resolve', {
            custodian: TENANT,
            namespace: Array.from({ length: 9 }, (_, i) => `n${i}`),
          }),
        );
      });

      it('encrypt → decrypt round trip (bytes in memory), with aad and the expected custodian', async () => {
        const plaintext = Buffer.from('the quick brown fox \u0000\u00ff');
        const sealed = await t.api.encrypt(
          { custodian: TENANT, namespace: ['invoices'], aad: 'row-17' },
          plaintext,
        );
        assert.equal(sealed.result.namespace, 'invoices');
        assert.ok(!sealed.data.includes(plaintext));
        const opened = await t.api.decrypt({ custodian: TENANT, aad: 'row-17' }, sealed.data);
        assert.deepEqual(opened.data, plaintext);
        assert.equal(opened.result?.keyId, sealed.result.keyId);
        assert.equal(opened.result?.namespace, 'invoices');
        const empty = await t.api.encrypt({ custodian: TENANT, namespace: ['invoices'] }, new Uint8Array());
        assert.equal((await t.api.decrypt({}, empty.data)).data.length, 0);
      });

      it('tampered data, another aad or another custodian → ERR_DECRYPTION_FAILED, nothing written', async () => {
        const sealed = await t.api.encrypt(
          { custodian: TENANT, namespace: ['invoices'] },
          Buffer.from('secret'),
        );
        const tampered = Buffer.from(sealed.data);
        const last = tampered.length - 1;
        tampered[last] = (tampered[last] ?? 0) ^ 1;
        await refused('ERR_DECRYPTION_FAILED', () => t.api.decrypt({}, tampered));
        await refused('ERR_DECRYPTION_FAILED', () => t.api.decrypt({ aad: 'other' }, sealed.data));
        await refused('ERR_DECRYPTION_FAILED', () => t.api.decrypt({ custodian: OTHER }, sealed.data));
        await refused('ERR_DECRYPTION_FAILED', () => t.api.decrypt({}, Buffer.from('not an envelope')));
        await refused('ERR_NO_ACTIVE_KEY', () =>
          t.api.encrypt({ custodian: OTHER, namespace: ['invoices'] }, Buffer.from('x')),
        );
        await refused('ERR_INVALID_ARGUMENT', () => t.api.decrypt({ namespace: ['invoices'] }, sealed.data));
      });

      it('streams 8 MiB through encrypt and decrypt with the same bytes out', async () => {
        const chunk = randomBytes(64 * 1024);
        const chunks = 128; // 8 MiB
        const sent = createHash('sha256');
        const source = Readable.from(
          (function* () {
            for (let i = 0; i < chunks; i++) {
              sent.update(chunk);
              yield chunk;
            }
          })(),
        );
        const received = createHash('sha256');
        let bytes = 0;
        const sink = new Writable({
          write(data: Buffer, _e, callback) {
            received.update(data);
            bytes += data.length;
            callback();
          },
        });
        const encrypting = t.api.encryptStream({ custodian: TENANT, namespace: ['invoices'] });
        const decrypting = t.api.decryptStream({ custodian: TENANT });
        await pipeline(source, encrypting.stream, decrypting.stream, sink);
        const [sealed, opened] = await Promise.all([encrypting.result, decrypting.result]);
        assert.equal(bytes, chunk.length * chunks);
        assert.equal(received.digest('hex'), sent.digest('hex'));
        assert.equal(opened?.keyId, sealed.keyId);
      });

      it('a tampered stream fails its decryptStream with ERR_DECRYPTION_FAILED', async () => {
        const sealed = await t.api.encrypt(
          { custodian: TENANT, namespace: ['invoices'] },
          randomBytes(200 * 1024),
        );
        const tampered = Buffer.from(sealed.data);
        const middle = Math.floor(tampered.length / 2);
        tampered[middle] = (tampered[middle] ?? 0) ^ 1;
        const head = await t.head();
        const decrypting = t.api.decryptStream({});
        const drained = pipeline(
          Readable.from([tampered]),
          decrypting.stream,
          new Writable({ write: (_c, _e, cb) => cb() }),
        ).catch(() => 'failed');
        assert.equal(await codeOf(() => decrypting.result), 'ERR_DECRYPTION_FAILED');
        assert.equal(await drained, 'failed', 'the stream fails too');
        assert.equal(await t.head(), head);
      });
    });

    describe('audit', () => {
      it('checkpoint, verify, scope-as-of, metrics, and the audit export streamed', async () => {
        t.provider.setKey(keyScope(TENANT, 'audited'), 'a1');
        const enabled = oneScope(await t.api.call('enable-key-management', { scope: `${TENANT}:audited` }));
        const checkpoint = await t.api.call('checkpoint', {});
        assert.ok(checkpoint !== null);
        const report = await t.api.call('verify', {});
        assert.equal(report.ok, true);
        const asOf = await t.api.call('scope-as-of', {
          scope: `${TENANT}:audited`,
          at: enabled.position ?? '',
        });
        assert.equal(asOf.marker, 'ACTIVE');
        const metrics = await t.api.call('metrics', { scope: `${TENANT}:audited` });
        assert.ok(metrics.days.length >= 1);
        const exporting = t.api.stream('audit-export', {});
        exporting.stream.end();
        const chunks: Buffer[] = [];
        for await (const chunk of exporting.stream) chunks.push(chunk as Buffer);
        const summary = await exporting.result;
        const lines = Buffer.concat(chunks).toString('utf8').trim().split('\n');
        assert.ok(lines.length > 3);
        for (const line of lines) JSON.parse(line);
        assert.equal(typeof summary, 'object');
        await refused('ERR_INVALID_AS_OF', () =>
          t.api.call('scope-as-of', { scope: `${TENANT}:audited`, at: '2026-01-01' }),
        );
      });
    });

    describe('events$', () => {
      it('replays from the start, filtered by type, and follows what is written next', async () => {
        const enabled = await firstValueFrom(
          t.api.events$({ from: 'start', types: 'KeyManagementEnabled' }).pipe(take(2), toArray()),
        );
        assert.deepEqual(
          enabled.map((e) => e.type),
          ['KeyManagementEnabled', 'KeyManagementEnabled'],
        );
        const [first] = enabled;
        assert.match(first?.position ?? '', /^\d+$/);
        const next = firstValueFrom(
          t.api
            .events$({ from: first?.position, scope: [`${TENANT}:live`] })
            .pipe(filter((e) => e.type === 'KeyManagementEnabled')),
        );
        t.provider.setKey(keyScope(TENANT, 'live'), 'live1');
        await t.api.call('enable-key-management', { scope: `${TENANT}:live` }, { reason: 'watched' });
        const event = await next;
        assert.equal(event.meta.actor, t.actor);
        assert.equal(event.meta.reason, 'watched');
      });

      it('a bad filter fails the Observable with the input code', async () => {
        assert.equal(
          await codeOf(() => firstValueFrom(t.api.events$({ types: 'NoSuchEvent' }))),
          'ERR_INVALID_ARGUMENT',
        );
        assert.equal(
          await codeOf(() => firstValueFrom(t.api.events$({ from: '-1' }))),
          'ERR_INVALID_ARGUMENT',
        );
      });
    });
  });
}
