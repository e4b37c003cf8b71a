import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { KeyledgerClient } from '../../src/client/keyledgerClient.js';
import { keyScope } from '../../src/domain/identities.js';
import type { KeyledgerApi } from '../../src/operations/keyledgerApi.js';
import { LedgerApi } from '../../src/operations/ledgerApi.js';
import { contractLedger } from '../contract/keyledgerApi.contract.js';
import { type ContractServer, startContractServer } from '../helpers/contractServer.js';
import type { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * `reencrypt` through KeyledgerApi, in process (LedgerApi) and over HTTPS (KeyledgerClient to a real
 * server on 127.0.0.1:0): the same results and codes. Its own file, with a server of its own.
 */

const TENANT = Buffer.from('tenant-1').toString('base64');

interface Target {
  readonly api: KeyledgerApi;
  readonly provider: ScriptedProvider;
  head(): Promise<bigint>;
  close(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  'in process (LedgerApi)': async () => {
    const opened = await contractLedger();
    const api = new LedgerApi({ ledger: opened.ledger, actor: 'tester', store: opened.access });
    return {
      api,
      provider: opened.provider,
      head: opened.head,
      close: async () => {
        await api.close();
        await opened.close();
      },
    };
  },
  'remote (KeyledgerClient over HTTPS)': async () => {
    const s: ContractServer = await startContractServer();
    const api = new KeyledgerClient({ url: s.url, token: await s.jwt('app', ['admin:*']), ca: s.ca });
    return {
      api,
      provider: s.ledger.provider,
      head: s.ledger.head,
      close: async () => {
        await api.close();
        await s.stop();
      },
    };
  },
};

async function codeOf(call: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await call();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  assert.fail('expected a failure');
}

for (const [name, factory] of Object.entries(targets)) {
  describe(`reencrypt through KeyledgerApi: ${name}`, () => {
    let t: Target;
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

    it('reencrypt: legacy AES-GCM data under an imported key → the stream format; refusals write nothing', async () => {
      t.provider.setKey(keyScope(TENANT, 'legacy-source'), 'old-table-key');
      const imported = await t.api.call('import-managed-key', {
        scope: `${TENANT}:archive`,
        alias: 'old-table-key',
        inactive: true,
      });
      t.provider.setKey(keyScope(TENANT, 'archive'), 'archive-2026');
      await t.api.call('enable-key-management', { scope: `${TENANT}:archive` });
      const nonce = randomBytes(12);
      const cipher = createCipheriv(
        'aes-256-gcm',
        t.provider.bytesOf('old-table-key') ?? Buffer.alloc(32),
        nonce,
      );
      cipher.setAAD(Buffer.from('row-9'));
      const legacy = Buffer.concat([
        nonce,
        cipher.update('from before the ledger'),
        cipher.final(),
        cipher.getAuthTag(),
      ]);
      const reencrypt = async (input: { key: string; aad?: string; legacy?: string }, data: Buffer) => {
        const transfer = t.api.stream('reencrypt', { legacy: 'aes-256-gcm', ...input } as never);
        const chunks: Buffer[] = [];
        const piped = pipeline(
          Readable.from([data]),
          transfer.stream,
          new Writable({
            write(chunk: Buffer, _e, callback) {
              chunks.push(chunk);
              callback();
            },
          }),
        ).catch(() => 'failed');
        const result = await transfer.result;
        await piped;
        return { result, data: Buffer.concat(chunks) };
      };
      const moved = await reencrypt({ key: imported.key.metadataHash, aad: 'row-9' }, legacy);
      assert.equal(moved.result.from.metadataHash, imported.key.metadataHash);
      assert.notEqual(moved.result.to.metadataHash, imported.key.metadataHash);
      const opened = await t.api.decrypt({ custodian: TENANT, aad: 'row-9' }, moved.data);
      assert.equal(opened.data.toString(), 'from before the ledger');
      assert.equal(opened.result?.namespace, 'archive');
      await refused('ERR_DECRYPTION_FAILED', () =>
        reencrypt({ key: imported.key.metadataHash, aad: 'row-8' }, legacy),
      );
      await refused('ERR_LEGACY_KEY_UNUSABLE', () => reencrypt({ key: 'no-such-key' }, legacy));
      await refused('ERR_LEGACY_KEY_UNUSABLE', () =>
        reencrypt({ key: moved.result.to.metadataHash }, legacy),
      );
      await refused('ERR_INVALID_ARGUMENT', () =>
        reencrypt({ key: imported.key.metadataHash, legacy: 'aes-128-gcm' }, legacy),
      );
    });
  });
}

describe('reencrypt over HTTPS: grants on the key’s custodian', () => {
  it('a caller with decrypt and encrypt on another custodian only is refused (ERR_FORBIDDEN), nothing written', async () => {
    const s = await startContractServer();
    const admin = new KeyledgerClient({ url: s.url, token: await s.jwt('admin', ['admin:*']), ca: s.ca });
    const other = Buffer.from('tenant-2').toString('base64');
    const outsider = new KeyledgerClient({
      url: s.url,
      token: await s.jwt('outsider', [`decrypt:${other}`, `encrypt:${other}`]),
      ca: s.ca,
    });
    try {
      s.ledger.provider.setKey(keyScope(TENANT, 'legacy-source'), 'old-key');
      const imported = await admin.call('import-managed-key', {
        scope: `${TENANT}:archive`,
        alias: 'old-key',
        inactive: true,
      });
      const head = await s.ledger.head();
      const transfer = outsider.stream('reencrypt', {
        legacy: 'aes-256-gcm',
        key: imported.key.metadataHash,
      } as never);
      const piped = pipeline(
        Readable.from([randomBytes(64)]),
        transfer.stream,
        new Writable({ write: (_c, _e, cb) => cb() }),
      ).catch(() => 'failed');
      assert.equal(await codeOf(() => transfer.result), 'ERR_FORBIDDEN');
      await piped;
      assert.equal(await s.ledger.head(), head);
    } finally {
      await outsider.close();
      await admin.close();
      await s.stop();
    }
  });
});
