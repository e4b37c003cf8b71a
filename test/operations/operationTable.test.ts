import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { firstValueFrom, isObservable, type Observable, take, toArray } from 'rxjs';
import { z } from 'zod';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { ByteStreams, OperationHost } from '../../src/operations/operation.js';
import { type AnyOperation, OPERATIONS, type OperationName } from '../../src/operations/operations.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const scope = keyScope(CUST, 'orders');
const dir = mkdtempSync(join(tmpdir(), 'keyledger-ops-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the operation table', () => {
  it('names are unique, and each CLI command shape is unique', () => {
    const names = OPERATIONS.map((o) => o.name);
    assert.equal(new Set(names).size, names.length);
    const shapes = OPERATIONS.map((o) => `${o.cli?.command ?? o.name} ${o.cli?.selectedBy ?? ''}`);
    assert.equal(new Set(shapes).size, shapes.length);
  });

  it('every input schema converts to JSON Schema, and every field says what it is', () => {
    for (const op of OPERATIONS) {
      const schema = z.toJSONSchema(op.input, { io: 'input' }) as {
        type: string;
        properties?: Record<string, { description?: string }>;
      };
      assert.equal(schema.type, 'object', op.name);
      for (const [field, property] of Object.entries(schema.properties ?? {})) {
        assert.ok(property.description, `${op.name}.${field} has a description`);
      }
      for (const positional of op.cli?.positionals ?? []) {
        assert.ok(schema.properties?.[positional], `${op.name}: positional ${positional} is an input field`);
      }
    }
  });

  it('refuses bad input in prepare with the ledger’s codes, before anything is opened', () => {
    const byName = (name: OperationName) => OPERATIONS.find((o) => o.name === name) as AnyOperation;
    const prepare = (name: OperationName, input: unknown) =>
      (byName(name).prepare as (i: unknown) => unknown)(input);
    assert.throws(() => prepare('enable-key-management', { scope: 'tenant-1:orders' }), {
      code: 'ERR_INVALID_CUSTODIAN',
      message: /name=tenant-1/,
    });
    assert.throws(() => prepare('disable-managed-key', { scope: CUST, key: 'short' }), {
      code: 'ERR_INVALID_METADATA',
    });
    assert.throws(() => prepare('scope-as-of', { scope: CUST, at: '2026-01-01' }), {
      code: 'ERR_INVALID_AS_OF',
    });
    assert.throws(() => prepare('destroy-managed-key', { scope: CUST, key: 'a'.repeat(32), grace: '1y' }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => prepare('token-create', { principal: 'app', grant: ['write:*'] }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => prepare('token-create', { principal: 'a\nb', grant: ['read:*'] }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => prepare('token-create', { principal: 'app', grant: ['read:*'], expires: 'soon' }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => prepare('token-revoke', { id: 'not-an-id' }), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => prepare('set-rotation-policy', { target: CUST, period: '90' }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => prepare('set-rotation-policy', { target: CUST, period: '0s' }), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => prepare('clear-rotation-policy', { target: '@everyone' }), {
      code: 'ERR_INVALID_CUSTODIAN',
    });
    assert.deepEqual(prepare('clear-rotation-policy', { target: '@stk' }), { kind: 'system' });
    assert.deepEqual(prepare('show-key-status', { scope: 'name=tenant-1:orders' }), scope);
    assert.deepEqual(prepare('show-key-status', { scope: 'name=acme:a:b' }), {
      custodian: Buffer.from('acme').toString('base64'),
      namespace: 'a:b',
    });
  });

  it('every operation run on a ledger answers plain JSON data (a sample run of each)', async () => {
    const store = new MemoryEventStore();
    const provider = new ScriptedProvider();
    const ledger = await Ledger.open({ store, provider, actor: 'tester', checkpointEvery: 0 });
    const host: OperationHost = {
      ledger: async () => ledger,
      store: async () => ({
        store,
        prefix: 'kl-',
        provider: () => provider,
        checkpointEvery: 0,
        anchorFile: undefined,
      }),
      actor: 'tester',
      reason: 'sample run',
      signal: new AbortController().signal,
      progress: () => {},
      local: {
        init: async () => ({
          config: '(none)',
          configCreated: false,
          keystore: null,
          token: null,
          store: 'memory:',
          systemKey: await ledger.initialise(),
        }),
        resolvePath: (path) => join(dir, path),
        fileVerifier: async () => null,
      },
    };
    const ran = new Set<string>();
    const outputs = new Map<string, unknown>();
    async function run(
      name: OperationName,
      input: Record<string, unknown>,
      streams?: ByteStreams,
      // biome-ignore lint/suspicious/noExplicitAny: each sample reads fields of its own operation's result
    ): Promise<any> {
      const op = OPERATIONS.find((o) => o.name === name) as AnyOperation;
      const parsed = op.input.parse(input);
      const prepared = (op.prepare as (i: unknown) => unknown)(parsed);
      const result = (op.run as (p: unknown, h: OperationHost, s?: ByteStreams) => unknown)(
        prepared,
        host,
        streams,
      );
      const value = isObservable(result)
        ? await firstValueFrom((result as Observable<unknown>).pipe(take(3), toArray()))
        : await (result as Promise<unknown>);
      assert.deepEqual(
        JSON.parse(JSON.stringify(value)),
        value,
        `${name}: its result survives a JSON round trip`,
      );
      ran.add(name);
      outputs.set(name, value);
      return value;
    }
    const sink = () => {
      const parts: Buffer[] = [];
      const output = new Writable({
        write(chunk: Buffer, _e, callback) {
          parts.push(chunk);
          callback();
        },
      });
      return { output, bytes: () => Buffer.concat(parts) };
    };

    await run('init', {});
    provider.setKey(scope, 'k1');
    const enabled = await run('enable-key-management', { scope: 'name=tenant-1:orders' });
    await run('show-key-status', { scope: `${CUST}:orders` });
    await run('scope-as-of', { scope: `${CUST}:orders`, at: '1' });
    await run('list-scopes', {});
    await run('resolve', { custodian: 'name=tenant-1', namespace: ['x', 'orders'] });
    provider.setKey(scope, 'k2');
    await run('rotate-managed-key', { scope: `${CUST}:orders` });
    await run('refresh-managed-keys', { scope: `${CUST}:orders` });
    const k1 = enabled.key as { keyId: string; metadataHash: string; metadata: string };
    const disabled = await run('disable-managed-key', { scope: `${CUST}:orders`, key: k1.keyId });
    assert.equal(disabled.key.metadataHash, k1.metadataHash, 'a key id names the same key as its hash');
    await run('enable-managed-key', { scope: `${CUST}:orders`, key: k1.metadataHash });
    await run('set-managed-key', { scope: `${CUST}:orders`, metadata: k1.metadata });
    await run('eject-cache-entry', { scope: `${CUST}:orders`, key: k1.keyId });
    await run('clear-cache', {});
    await run('history', { scope: `${CUST}:orders` });
    await run('history', { scope: `${CUST}:orders`, key: k1.keyId });
    await run('metrics', {});
    await run('watch', { from: 'start' });
    const encrypted = sink();
    await run(
      'encrypt',
      { custodian: CUST, namespace: ['orders'] },
      {
        input: Readable.from([Buffer.from('hello')]),
        output: encrypted.output,
      },
    );
    const decrypted = sink();
    await run('decrypt', {}, { input: Readable.from([encrypted.bytes()]), output: decrypted.output });
    assert.equal(decrypted.bytes().toString(), 'hello');
    const stk1 = ledger.systemKeys()[0]?.identity ?? '';
    provider.rotateSystemKey('stk-2');
    await run('rotate-stk', {});
    await run('rewrap-status', {});
    const paused = await run('rewrap-start', { batch: 1, maxBatches: 1 });
    assert.equal(paused.status, 'paused');
    await run('rewrap-resume', { resume: paused.campaign.campaignId });
    await run('retire-stk', { identity: stk1 });
    await run('destroy-stk', { identity: stk1 });
    await run('checkpoint', {});
    await run('verify', {});
    await run('audit-export', {}, { input: new PassThrough(), output: sink().output });
    await run('audit-export-file', { out: 'export.jsonl' });
    await run('verify-export', { file: 'export.jsonl' });
    // k2 (rotated in, then set aside by set-managed-key) is INACTIVE: destroy it, by key id and by hash.
    const k2 = (outputs.get('rotate-managed-key') as { key: { keyId: string; metadataHash: string } }).key;
    await run('destroy-managed-key', { scope: `${CUST}:orders`, key: k2.metadataHash, grace: '0s' });
    await run('cancel-destroy', { scope: `${CUST}:orders`, key: k2.keyId });
    await run('destroy-managed-key', { scope: `${CUST}:orders`, key: k2.keyId, grace: '0s' });
    const destroyed = await run('destroy-due-keys', {});
    assert.equal(destroyed.destroyed.length, 1);
    await run('destruction-receipts', { scope: `${CUST}:orders` });
    provider.setKey(keyScope(CUST, 'legacy-source'), 'legacy-1');
    const imported = await run('import-managed-key', {
      scope: `${CUST}:legacy`,
      alias: 'legacy-1',
      inactive: true,
    });
    assert.equal(imported.key.state, 'INACTIVE');
    // Legacy data under the imported key, re-encrypted under the scope's new ACTIVE key.
    provider.setKey(keyScope(CUST, 'legacy'), 'legacy-2');
    await run('enable-key-management', { scope: `${CUST}:legacy` });
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', provider.bytesOf('legacy-1') ?? Buffer.alloc(32), nonce);
    cipher.setAAD(Buffer.from('row-1'));
    const legacyData = Buffer.concat([nonce, cipher.update('old row'), cipher.final(), cipher.getAuthTag()]);
    const reencrypted = sink();
    const moved = await run(
      'reencrypt',
      { legacy: 'aes-256-gcm', key: imported.key.metadataHash, aad: 'row-1' },
      { input: Readable.from([legacyData]), output: reencrypted.output },
    );
    assert.equal(moved.from.metadataHash, imported.key.metadataHash);
    const back = sink();
    await run(
      'decrypt',
      { aad: 'row-1' },
      { input: Readable.from([reencrypted.bytes()]), output: back.output },
    );
    assert.equal(back.bytes().toString(), 'old row');
    await ledger.legacyReencryption.start('sample', imported.key.metadataHash);
    const campaigns = await run('reencrypt-status', {});
    assert.deepEqual(
      campaigns.map((c: { campaign: string }) => c.campaign),
      ['sample'],
    );
    const policy = await run('set-rotation-policy', {
      target: `${CUST}:orders`,
      period: '90d',
      disableInactiveAfter: '30d',
    });
    assert.equal(policy.changed, true);
    await run('list-rotation-policies', {});
    const due = await run('rotate-due-keys', { dryRun: true });
    assert.deepEqual(due.results, [], 'nothing is 90 days old');
    await run('rotation-policy-history', { target: `${CUST}:orders` });
    await run('clear-rotation-policy', { target: `${CUST}:orders` });
    await run('disable-key-management', { scope: `${CUST}:orders` });
    const token = await run('token-create', {
      principal: 'app-1',
      grant: ['encrypt:name=tenant-1', 'audit:*'],
      expires: '90d',
    });
    assert.equal(ledger.tokens.check(token.token).ok, true);
    await run('token-list', {});
    await run('token-revoke', { id: token.tokenId });
    // Run locally no grant applies: whoami says so (null), not "no grants".
    const me = await run('whoami', {});
    assert.equal(me.grants, null);
    const one = await run('list-scopes', { custodian: 'name=tenant-1' });
    assert.ok(one.every((s: { custodian: string }) => s.custodian === CUST));
    await ledger.close();
    assert.deepEqual(
      OPERATIONS.map((o) => o.name).filter((name) => !ran.has(name)),
      [],
      'every operation of the table has a sample run',
    );
  });
});

describe('library results are plain data', () => {
  it('JSON.stringify works on history; scopeAsOf answers getScopeStatus’s shape', async () => {
    const provider = new ScriptedProvider();
    const ledger = await Ledger.open({ store: new MemoryEventStore(), provider });
    await ledger.initialise();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(CUST, 'orders');
    const history = await ledger.history(CUST, 'orders');
    assert.deepEqual(JSON.parse(JSON.stringify(history)), history);
    const asOf = await ledger.scopeAsOf(CUST, 'orders', ledger.position);
    const { at, position, ...status } = asOf;
    assert.deepEqual(status, await ledger.admin.getScopeStatus(CUST, 'orders'));
    assert.equal(at, ledger.position.toString());
    assert.equal(position, ledger.position.toString());
    assert.deepEqual(JSON.parse(JSON.stringify(asOf)), asOf);
    await ledger.close();
  });
});
