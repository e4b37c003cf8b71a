import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChainingEventStore } from '../../src/audit/chainingEventStore.js';
import { keyChecksum } from '../../src/crypto/keyChecksum.js';
import { softwareSystemKey } from '../../src/crypto/systemKeyHandle.js';
import { systemKeyIdentity } from '../../src/crypto/systemKeyIdentity.js';
import { keyScope } from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { writePkcs12SecretKeys } from '../../src/providers/keystore/pkcs12.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';

/**
 * Finding 4 of issue 11: whoever can write the store appends a chained `SystemKeyRotated` naming
 * a keystore alias that holds a tenant's data key, with the identity copied from that key's
 * published checksum. The ledger must neither wrap a DEK under it nor MAC a checkpoint with it.
 */
const PASSWORD = 'system-key-alias-test';
const TENANT_A = Buffer.from('tenant-a').toString('base64');
const TENANT_B = Buffer.from('tenant-b').toString('base64');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-stk-alias-'));
  const keys = ['stk', 'tenant-a-key', 'tenant-b-key'].map((alias) => ({
    alias,
    key: SecretBytes.adopt(randomBytes(32)),
  }));
  writeFileSync(join(dir, 'store.p12'), writePkcs12SecretKeys(keys, PASSWORD), { mode: 0o600 });
  for (const { key } of keys) key.zero();
  process.env.KL_STK_ALIAS_TEST_PASSWORD = PASSWORD;
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  delete process.env.KL_STK_ALIAS_TEST_PASSWORD;
});

function provider(extra: Record<string, unknown> = {}): KeystoreKeyProvider {
  return new KeystoreKeyProvider(
    resolveKeystoreConfig(
      {
        path: 'store.p12',
        password: { env: 'KL_STK_ALIAS_TEST_PASSWORD' },
        systemKeyAlias: 'stk',
        scopes: { [TENANT_A]: { alias: 'tenant-a-key' }, [TENANT_B]: { alias: 'tenant-b-key' } },
        ...extra,
      },
      dir,
    ),
  );
}

async function all(store: SqliteEventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const event of store.readAll()) events.push(event);
  return events;
}

describe('the system key is only a configured one (issue 11, finding 4)', () => {
  it('a forged, chained SystemKeyRotated naming a data key alias is refused: nothing is wrapped or MACed under it', async () => {
    const file = join(dir, 'attack.db');
    const store = SqliteEventStore.open(file);
    const keys = provider();
    const ledger = await Ledger.open({ store, provider: keys, actor: 'test', checkpointEvery: 0 });
    try {
      await ledger.initialise();
      await ledger.admin.enableKeyManagement(TENANT_A);
      const [published] = await ledger.admin.getManagedKeys(TENANT_A);
      assert.ok(published !== undefined);
      const genuine = ledger.systemKeys()[0];
      assert.ok(genuine !== undefined);
      // The attacker writes what an honest rotation would, with the data key's published checksum.
      const metadata = JSON.stringify({ KeyAlias: 'tenant-a-key' });
      const forged = await new ChainingEventStore(store).append(
        'kl-system',
        [
          {
            eventId: '00000000-0000-4000-8000-0000000000f4',
            type: 'SystemKeyRotated',
            data: {
              sequence: 2,
              identity: published.checksum,
              metadata,
              metadataHash: metadataHashOf(metadata),
              previousIdentity: genuine.identity,
            },
            metadata: {
              schemaVersion: 2,
              actor: 'mallory',
              reason: null,
              correlationId: 'forged',
              causationId: null,
              occurredAt: new Date().toISOString(),
            },
          },
        ],
        0n,
      );
      await ledger.waitForPosition(forged.position);
      assert.equal(ledger.systemKeys().at(-1)?.identity, published.checksum);
      const before = (await all(store)).length;

      await assert.rejects(ledger.admin.enableKeyManagement(TENANT_B), {
        code: 'ERR_SYSTEM_KEY_NOT_CONFIGURED',
      });
      await assert.rejects(ledger.checkpoint(), { code: 'ERR_SYSTEM_KEY_NOT_CONFIGURED' });
      const after = await all(store);
      assert.equal(after.length, before, 'nothing may be written');
      assert.ok(
        !after.some((e) => e.type === 'KeyMaterialWrapped' && e.data.stkIdentity === published.checksum),
      );
      assert.ok(!after.some((e) => e.type === 'LedgerCheckpointed'));
    } finally {
      await ledger.close();
      await keys.close();
      await store.close();
    }
  });

  it('the keystore serves as system key only systemKeyAlias and previousSystemKeyAliases', async () => {
    const keys = provider({ previousSystemKeyAliases: ['OLD-STK'] });
    try {
      for (const alias of ['tenant-a-key', 'tenant-b-key', 'unconfigured']) {
        await assert.rejects(keys.unwrapSystemKey(JSON.stringify({ KeyAlias: alias })), {
          code: 'ERR_SYSTEM_KEY_NOT_CONFIGURED',
          details: { alias },
        });
      }
      // A configured previous alias is served (here it is missing from the keystore).
      await assert.rejects(keys.unwrapSystemKey(JSON.stringify({ KeyAlias: 'old-stk' })), {
        code: 'ERR_KEYSTORE_ALIAS_NOT_FOUND',
      });
      // And a system key alias, current or previous, is never a data key.
      await assert.rejects(
        keys.unwrapKey(JSON.stringify({ KeyAlias: 'old-stk', KeyCustodian: TENANT_A, KeyNamespace: '*' })),
        { code: 'ERR_INVALID_METADATA' },
      );
    } finally {
      await keys.close();
    }
  });

  it('a scope alias cannot be configured as a previous system key (ERR_INVALID_CONFIG)', () => {
    assert.throws(() => provider({ previousSystemKeyAliases: ['Tenant-A-Key'] }), {
      code: 'ERR_INVALID_CONFIG',
    });
  });

  it("a key's published checksum never equals its identity as a system key (distinct HMAC labels)", () => {
    const bytes = randomBytes(32);
    const key = SecretBytes.copyOf(bytes);
    const expected = createHmac('sha256', bytes).update('keyledger-stk-identity-v2').digest();
    assert.equal(systemKeyIdentity(key), expected.subarray(0, 8).toString('hex'));
    assert.notEqual(systemKeyIdentity(key), keyChecksum(key));
    const handle = softwareSystemKey('{"KeyAlias":"x"}', key);
    try {
      assert.equal(handle.identity, systemKeyIdentity(SecretBytes.copyOf(bytes)));
      // Ledgers from before identity version 2 recorded the checksum: bind keeps that name.
      assert.equal(
        handle.bind(keyChecksum(SecretBytes.copyOf(bytes)))?.identity,
        keyChecksum(SecretBytes.copyOf(bytes)),
      );
      assert.equal(handle.bind('0000000000000000'), null);
    } finally {
      handle.dispose();
    }
  });

  it('wrapping keys are derived from the STK (format 2); format-1 wraps still unwrap', () => {
    const stk = SecretBytes.copyOf(Buffer.from(Array.from({ length: 32 }, (_, i) => 0x20 + i)));
    const handle = softwareSystemKey('{"KeyAlias":"stk"}', stk);
    const binding = {
      ...keyScope(Buffer.from('tenant-1').toString('base64'), 'orders'),
      metadataHash: metadataHashOf(
        '{"KeyAlias":"tenant1-orders-v1","KeyCustodian":"dGVuYW50LTE=","KeyNamespace":"orders"}',
      ),
    };
    const dek = SecretBytes.copyOf(Buffer.from(Array.from({ length: 32 }, (_, i) => i)));
    try {
      // docs/formats.md's format-1 vector: the STK itself was the AES key, bound to its checksum.
      const v1 = 'AQABAgMEBQYHCAkKC1xTX6ROMO3rtPDDzSp+UDMDYft3fgSwBjwUyaGnnNWHzjHJQsxgw0lcOiU2aAz3qg==';
      const legacy = handle.bind('9f128045002663f5');
      assert.ok(legacy !== null);
      assert.ok(legacy.unwrap(v1, binding, null).equals(dek));
      const v2 = handle.wrap(dek, binding);
      assert.equal(Buffer.from(v2, 'base64')[0], 2);
      assert.ok(handle.unwrap(v2, binding, null).equals(dek));
      // A format-2 wrap is not a format-1 wrap with another version byte: the key differs.
      const relabelled = Buffer.from(v2, 'base64');
      relabelled[0] = 1;
      assert.throws(() => handle.unwrap(relabelled.toString('base64'), binding, null), {
        code: 'ERR_KEY_UNWRAP_FAILED',
      });
    } finally {
      handle.dispose();
    }
  });
});
