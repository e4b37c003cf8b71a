import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyChecksum } from '../../src/crypto/keyChecksum.js';
import { systemKeyIdentity } from '../../src/crypto/systemKeyIdentity.js';
import { type KeyScope, keyScope, scopeKey } from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { formatKeyMetadata, formatSystemKeyMetadata } from '../../src/providers/keyMetadata.js';
import {
  type KeystoreConfigInput,
  resolveKeystoreConfig,
} from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import type { ManagedKeyData, ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { javaSecretKeys, keytoolGenSecKey, requireKeytool, withTempDir } from '../helpers/keytool.js';
import { holdTempDir, rejectsWithCode, testKeyProvider, throwsWithCode } from './keyProvider.contract.js';

const PASSWORD = 'keyprovider-Test-1';
const HBASE = 'hbase.crypto.managed_key_store.';
const SYSTEM_KEY_PROPERTY = `${HBASE}system.key.name`;

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

/** The scope string of the structured form: `<custodian-b64>:<namespace>`. */
function scopeString(scope: KeyScope): string {
  return scopeKey(scope);
}

function property(scope: KeyScope, field: 'alias' | 'active'): string {
  return `${HBASE}cust.${scope.custodian}.${scope.namespace}.${field}`;
}

function aliasMetadata(alias: string, scope: KeyScope): string {
  return formatKeyMetadata({ kind: 'alias', alias, scope });
}

function hex(key: SecretBytes | null): string {
  assert.ok(key !== null, 'a key');
  return Buffer.from(key.expose()).toString('hex');
}

// ---------------------------------------------------------------------------------------------
// The contract, on a keystore made by keytool

const CONTRACT_SCOPE = keyScope(b64('contract-custodian'), 'table1/cf1');
const CONTRACT_PASSWORD_ENV = 'KEYLEDGER_KEYPROVIDER_CONTRACT_PASSWORD';

testKeyProvider('keystore', async () => {
  requireKeytool();
  const held = await holdTempDir();
  try {
    const path = join(held.dir, 'contract.p12');
    keytoolGenSecKey(path, 'SystemKey', PASSWORD);
    keytoolGenSecKey(path, 'ScopeKey', PASSWORD);
    const javaKeys = await javaSecretKeys(path, PASSWORD);
    process.env[CONTRACT_PASSWORD_ENV] = PASSWORD;
    const config = resolveKeystoreConfig(
      {
        path: 'contract.p12',
        password: { env: CONTRACT_PASSWORD_ENV },
        systemKeyAlias: 'SystemKey',
        scopes: { [scopeString(CONTRACT_SCOPE)]: { alias: 'ScopeKey' } },
      },
      held.dir,
    );
    return {
      provider: new KeystoreKeyProvider(config),
      configuredScope: CONTRACT_SCOPE,
      knownKeyBytes: javaKeys.map((k) => Buffer.from(k.hex, 'hex')),
      cleanup: async () => {
        delete process.env[CONTRACT_PASSWORD_ENV];
        await held.release();
      },
    };
  } catch (error) {
    await held.release();
    throw error;
  }
});

// ---------------------------------------------------------------------------------------------
// Keystore-specific behaviour, on one keytool-made keystore shared by the tests below

const PASSWORD_ENV = 'KEYLEDGER_KEYPROVIDER_KEYSTORE_PASSWORD';
const UNSET_ENV = 'KEYLEDGER_KEYPROVIDER_UNSET_PASSWORD';

/** The configured scope: alias ScopeKey, active. */
const SCOPE = keyScope(b64('cust-a'), 'table1/cf1');
/** No alias configured. */
const UNCONFIGURED = keyScope(b64('cust-none'), 'table1/cf1');
/** Alias configured (active) but absent from the keystore. */
const MISSING_ACTIVE = keyScope(b64('cust-missing'), 'ns-active');
/** Alias configured, `.active` false, absent from the keystore. */
const MISSING_INACTIVE = keyScope(b64('cust-missing'), 'ns-inactive');
/** Alias configured, `.active` false, present in the keystore. */
const INACTIVE = keyScope(b64('cust-inactive'), 'ns.with.dots');
/** Global namespace, alias given in another case than keytool stored it. */
const GLOBAL_NS = keyScope(b64('cust-global'));

const ALL_SCOPES = [SCOPE, UNCONFIGURED, MISSING_ACTIVE, MISSING_INACTIVE, INACTIVE, GLOBAL_NS];

const STRUCTURED_SCOPES = {
  [scopeString(SCOPE)]: { alias: 'ScopeKey' },
  [scopeString(MISSING_ACTIVE)]: { alias: 'AbsentKey' },
  [scopeString(MISSING_INACTIVE)]: { alias: 'AbsentKey', active: false },
  [scopeString(INACTIVE)]: { alias: 'InactiveKey', active: false },
  // No colon: the global namespace.
  [GLOBAL_NS.custodian]: { alias: 'MIXEDCASE' },
};

const HBASE_PROPERTIES = {
  [SYSTEM_KEY_PROPERTY]: 'SystemKey',
  [property(SCOPE, 'alias')]: 'ScopeKey',
  [property(MISSING_ACTIVE, 'alias')]: 'AbsentKey',
  [property(MISSING_ACTIVE, 'active')]: 'true',
  [property(MISSING_INACTIVE, 'alias')]: 'AbsentKey',
  [property(MISSING_INACTIVE, 'active')]: 'false',
  [property(INACTIVE, 'alias')]: 'InactiveKey',
  [property(INACTIVE, 'active')]: 'false',
  [property(GLOBAL_NS, 'alias')]: 'MIXEDCASE',
};

describe('KeystoreKeyProvider', () => {
  let dir = '';
  let release: () => Promise<void> = async () => {};
  /** Lower-cased alias → hex, as Java decrypts the keystore. */
  const javaHex = new Map<string, string>();
  const opened: ManagedKeyProvider[] = [];
  const answers: ManagedKeyData[] = [];

  before(async () => {
    requireKeytool();
    const held = await holdTempDir();
    dir = held.dir;
    release = held.release;
    const path = join(dir, 'store.p12');
    for (const alias of ['SystemKey', 'ScopeKey', 'OldScopeKey', 'InactiveKey', 'MixedCase']) {
      keytoolGenSecKey(path, alias, PASSWORD);
    }
    keytoolGenSecKey(path, 'ShortKey', PASSWORD, { keysize: 128 });
    for (const key of await javaSecretKeys(path, PASSWORD)) javaHex.set(key.alias.toLowerCase(), key.hex);
    process.env[PASSWORD_ENV] = PASSWORD;
    delete process.env[UNSET_ENV];
  });

  after(async () => {
    for (const answer of answers) answer.key?.zero();
    for (const provider of opened) await provider.close();
    delete process.env[PASSWORD_ENV];
    delete process.env[UNSET_ENV];
    await release();
  });

  function open(overrides: Partial<KeystoreConfigInput> = {}, baseDir = dir): ManagedKeyProvider {
    const provider = new KeystoreKeyProvider(
      resolveKeystoreConfig(
        {
          path: 'store.p12',
          password: { env: PASSWORD_ENV },
          systemKeyAlias: 'SystemKey',
          scopes: STRUCTURED_SCOPES,
          ...overrides,
        },
        baseDir,
      ),
    );
    opened.push(provider);
    return provider;
  }

  async function answer(provider: ManagedKeyProvider, scope: KeyScope): Promise<ManagedKeyData> {
    const found = await provider.getManagedKey(scope);
    assert.ok(found !== null, 'the keystore provider always answers');
    answers.push(found);
    return found;
  }

  async function unwrap(provider: ManagedKeyProvider, metadata: string): Promise<ManagedKeyData> {
    const found = await provider.unwrapKey(metadata, null);
    answers.push(found);
    return found;
  }

  describe('scope answers', () => {
    it('a scope with no alias configured is FAILED, with no metadata and no key', async () => {
      const found = await answer(open(), UNCONFIGURED);
      assert.deepEqual({ ...found }, { ...UNCONFIGURED, state: 'FAILED', metadata: null, key: null });
    });

    it('an alias configured but absent from the keystore is FAILED when the scope is active', async () => {
      const found = await answer(open(), MISSING_ACTIVE);
      assert.equal(found.state, 'FAILED');
      assert.equal(found.custodian, MISSING_ACTIVE.custodian);
      assert.equal(found.namespace, MISSING_ACTIVE.namespace);
      assert.equal(found.metadata, aliasMetadata('absentkey', MISSING_ACTIVE));
      assert.equal(found.key, null);
    });

    it('an alias configured but absent from the keystore is DISABLED when .active is false', async () => {
      const found = await answer(open(), MISSING_INACTIVE);
      assert.equal(found.state, 'DISABLED');
      assert.equal(found.metadata, aliasMetadata('absentkey', MISSING_INACTIVE));
      assert.equal(found.key, null);
    });

    it('.active false with the key present is INACTIVE, with the key', async () => {
      const found = await answer(open(), INACTIVE);
      assert.equal(found.state, 'INACTIVE');
      assert.equal(found.metadata, aliasMetadata('inactivekey', INACTIVE));
      assert.equal(hex(found.key), javaHex.get('inactivekey'));
    });

    it('the configured alias is ACTIVE with the key, and answers carry the scope asked', async () => {
      const found = await answer(open(), SCOPE);
      assert.equal(found.state, 'ACTIVE');
      assert.equal(found.custodian, SCOPE.custodian);
      assert.equal(found.namespace, SCOPE.namespace);
      assert.equal(found.metadata, aliasMetadata('scopekey', SCOPE));
      assert.equal(hex(found.key), javaHex.get('scopekey'));
    });
  });

  describe('unwrapKey', () => {
    it('refuses the system key as a data key (ERR_INVALID_METADATA)', async () => {
      await rejectsWithCode(
        open().unwrapKey(aliasMetadata('systemkey', SCOPE), null),
        'ERR_INVALID_METADATA',
      );
    });

    it("refuses an alias configured for another scope under this scope's name (ERR_PROVIDER_WRONG_SCOPE)", async () => {
      const other = keyScope(SCOPE.custodian, 'another-namespace');
      await rejectsWithCode(
        open().unwrapKey(aliasMetadata('scopekey', other), null),
        'ERR_PROVIDER_WRONG_SCOPE',
      );
    });

    it('an older alias of the scope (not the configured one) is INACTIVE, with its key', async () => {
      const found = await unwrap(open(), aliasMetadata('oldscopekey', SCOPE));
      assert.equal(found.state, 'INACTIVE');
      assert.equal(found.custodian, SCOPE.custodian);
      assert.equal(found.namespace, SCOPE.namespace);
      assert.equal(found.metadata, aliasMetadata('oldscopekey', SCOPE));
      assert.equal(hex(found.key), javaHex.get('oldscopekey'));
    });

    it('the configured alias is ACTIVE, and follows .active false to INACTIVE', async () => {
      const provider = open();
      const current = await unwrap(provider, aliasMetadata('scopekey', SCOPE));
      assert.equal(current.state, 'ACTIVE');
      assert.equal(hex(current.key), javaHex.get('scopekey'));
      const inactive = await unwrap(provider, aliasMetadata('inactivekey', INACTIVE));
      assert.equal(inactive.state, 'INACTIVE');
      assert.equal(hex(inactive.key), javaHex.get('inactivekey'));
    });

    it('an alias no longer in the keystore is FAILED if it is the active one, DISABLED otherwise', async () => {
      const provider = open();
      const active = await unwrap(provider, aliasMetadata('absentkey', MISSING_ACTIVE));
      assert.equal(active.state, 'FAILED');
      assert.equal(active.key, null);
      const older = await unwrap(provider, aliasMetadata('gonekey', SCOPE));
      assert.equal(older.state, 'DISABLED');
      assert.equal(older.key, null);
      assert.equal(older.metadata, aliasMetadata('gonekey', SCOPE));
    });

    it('metadata of a generated key is ERR_INVALID_METADATA', async () => {
      const metadata = formatKeyMetadata({ kind: 'generated', id: 'A'.repeat(22), scope: SCOPE });
      await rejectsWithCode(open().unwrapKey(metadata, null), 'ERR_INVALID_METADATA');
    });

    it('HBase metadata without KeyNamespace names the global namespace', async () => {
      const metadata = JSON.stringify({ KeyAlias: 'MixedCase', KeyCustodian: GLOBAL_NS.custodian });
      const found = await unwrap(open(), metadata);
      assert.equal(found.state, 'ACTIVE');
      assert.equal(found.namespace, '*');
      assert.equal(found.metadata, aliasMetadata('mixedcase', GLOBAL_NS));
    });
  });

  describe('configuration forms', () => {
    it('the HBase property form behaves like the structured form', async () => {
      const structured = open();
      const hbase = open({ systemKeyAlias: undefined, scopes: undefined, properties: HBASE_PROPERTIES });
      const structuredStk = await structured.getSystemKey();
      const hbaseStk = await hbase.getSystemKey();
      try {
        assert.equal(hbaseStk.identity, structuredStk.identity);
        assert.equal(hbaseStk.metadata, structuredStk.metadata);
      } finally {
        structuredStk.dispose();
        hbaseStk.dispose();
      }
      const asked = [
        ...ALL_SCOPES.map((scope) => ({ scope, metadata: null as string | null })),
        { scope: SCOPE, metadata: aliasMetadata('oldscopekey', SCOPE) },
        { scope: SCOPE, metadata: aliasMetadata('scopekey', SCOPE) },
        { scope: INACTIVE, metadata: aliasMetadata('inactivekey', INACTIVE) },
      ];
      for (const { scope, metadata } of asked) {
        const left = metadata === null ? await answer(structured, scope) : await unwrap(structured, metadata);
        const right = metadata === null ? await answer(hbase, scope) : await unwrap(hbase, metadata);
        const what = `${scopeString(scope)} ${metadata ?? ''}`;
        assert.equal(right.state, left.state, what);
        assert.equal(right.custodian, left.custodian, what);
        assert.equal(right.namespace, left.namespace, what);
        assert.equal(right.metadata, left.metadata, what);
        if (left.key === null) assert.equal(right.key, null, what);
        else assert.ok(right.key?.equals(left.key), what);
      }
    });

    it('HBase properties: a namespace with dots and .active false on a present key give INACTIVE', async () => {
      const hbase = open({ systemKeyAlias: undefined, scopes: undefined, properties: HBASE_PROPERTIES });
      const found = await answer(hbase, INACTIVE);
      assert.equal(found.state, 'INACTIVE');
      assert.equal(found.namespace, 'ns.with.dots');
      assert.equal(hex(found.key), javaHex.get('inactivekey'));
    });

    it('aliases are case-insensitive, as keytool lower-cases them; metadata names them lower-cased', async () => {
      const provider = open({
        systemKeyAlias: 'SYSTEMKEY',
        scopes: {
          [scopeString(SCOPE)]: { alias: 'SCOPEKEY' },
          [GLOBAL_NS.custodian]: { alias: 'mixedCASE' },
        },
      });
      const stk = await provider.getSystemKey();
      const byMetadata = await provider.unwrapSystemKey(formatSystemKeyMetadata('SystemKEY'));
      try {
        assert.equal(stk.metadata, formatSystemKeyMetadata('systemkey'));
        assert.equal(
          stk.identity,
          systemKeyIdentity(SecretBytes.copyOf(Buffer.from(javaHex.get('systemkey') ?? '', 'hex'))),
        );
        assert.equal(byMetadata.identity, stk.identity);
      } finally {
        stk.dispose();
        byMetadata.dispose();
      }
      const scoped = await answer(provider, SCOPE);
      assert.equal(scoped.state, 'ACTIVE');
      assert.equal(scoped.metadata, aliasMetadata('scopekey', SCOPE));
      assert.equal(hex(scoped.key), javaHex.get('scopekey'));
      const mixed = await answer(provider, GLOBAL_NS);
      assert.equal(mixed.state, 'ACTIVE');
      assert.equal(mixed.metadata, aliasMetadata('mixedcase', GLOBAL_NS));
      assert.equal(hex(mixed.key), javaHex.get('mixedcase'));
      const upper = await unwrap(
        provider,
        JSON.stringify({
          KeyAlias: 'ScopeKey',
          KeyCustodian: SCOPE.custodian,
          KeyNamespace: SCOPE.namespace,
        }),
      );
      assert.equal(upper.state, 'ACTIVE');
      assert.equal(upper.metadata, aliasMetadata('scopekey', SCOPE));
      const hbase = open({
        systemKeyAlias: undefined,
        scopes: undefined,
        properties: { [SYSTEM_KEY_PROPERTY]: 'SYSTEMKEY', [property(SCOPE, 'alias')]: 'SCOPEKEY' },
      });
      const viaProperties = await answer(hbase, SCOPE);
      assert.equal(viaProperties.state, 'ACTIVE');
      assert.equal(viaProperties.metadata, aliasMetadata('scopekey', SCOPE));
    });
  });

  describe('keystore and password failures', () => {
    it('a wrong password is ERR_KEYSTORE_PASSWORD', async () => {
      const env = 'KEYLEDGER_KEYPROVIDER_WRONG_PASSWORD';
      process.env[env] = `${PASSWORD}-wrong`;
      try {
        const provider = open({ password: { env } });
        await rejectsWithCode(provider.getSystemKey(), 'ERR_KEYSTORE_PASSWORD');
        await rejectsWithCode(provider.getManagedKey(SCOPE), 'ERR_KEYSTORE_PASSWORD');
      } finally {
        delete process.env[env];
      }
    });

    it('a missing keystore file is ERR_KEYSTORE_NOT_FOUND', async () => {
      const provider = open({ path: 'no-such-store.p12' });
      await rejectsWithCode(provider.getSystemKey(), 'ERR_KEYSTORE_NOT_FOUND');
      await rejectsWithCode(provider.getManagedKey(SCOPE), 'ERR_KEYSTORE_NOT_FOUND');
      await rejectsWithCode(
        provider.unwrapKey(aliasMetadata('scopekey', SCOPE), null),
        'ERR_KEYSTORE_NOT_FOUND',
      );
    });

    it('a system key alias missing from the keystore is ERR_KEYSTORE_ALIAS_NOT_FOUND', async () => {
      const provider = open({ systemKeyAlias: 'NoSuchSystemKey' });
      await rejectsWithCode(provider.getSystemKey(), 'ERR_KEYSTORE_ALIAS_NOT_FOUND');
      await rejectsWithCode(
        open({ previousSystemKeyAliases: ['NoSuchSystemKey'] }).unwrapSystemKey(
          formatSystemKeyMetadata('nosuchsystemkey'),
        ),
        'ERR_KEYSTORE_ALIAS_NOT_FOUND',
      );
    });

    it('a system key that is not 256-bit is ERR_PROVIDER_INVALID_ANSWER', async () => {
      await rejectsWithCode(
        open({ systemKeyAlias: 'ShortKey' }).getSystemKey(),
        'ERR_PROVIDER_INVALID_ANSWER',
      );
    });

    it('malformed system key metadata is ERR_INVALID_METADATA', async () => {
      const provider = open();
      for (const metadata of ['not json', '{}', '{"KeyAlias":""}', '{"KeyAlias":"systemkey","Extra":1}']) {
        await rejectsWithCode(provider.unwrapSystemKey(metadata), 'ERR_INVALID_METADATA');
      }
    });

    it('an unset (or empty) password variable is ERR_KEYSTORE_PASSWORD', async () => {
      delete process.env[UNSET_ENV];
      await rejectsWithCode(open({ password: { env: UNSET_ENV } }).getSystemKey(), 'ERR_KEYSTORE_PASSWORD');
      process.env[UNSET_ENV] = '';
      try {
        await rejectsWithCode(open({ password: { env: UNSET_ENV } }).getSystemKey(), 'ERR_KEYSTORE_PASSWORD');
      } finally {
        delete process.env[UNSET_ENV];
      }
    });

    it('the password can come from a file (relative to the config), with a trailing newline', async () => {
      writeFileSync(join(dir, 'password-lf.txt'), `${PASSWORD}\n`, { mode: 0o600 });
      writeFileSync(join(dir, 'password-crlf.txt'), `${PASSWORD}\r\n`, { mode: 0o600 });
      writeFileSync(join(dir, 'password-bare.txt'), PASSWORD, { mode: 0o600 });
      for (const file of ['password-lf.txt', 'password-crlf.txt', 'password-bare.txt']) {
        const provider = open({ password: { file } });
        const stk = await provider.getSystemKey();
        stk.dispose();
        const found = await answer(provider, SCOPE);
        assert.equal(found.state, 'ACTIVE', file);
        assert.equal(hex(found.key), javaHex.get('scopekey'), file);
      }
    });

    it('a password file readable or writable by group or others is refused (ERR_INVALID_CONFIG naming it and its mode)', async () => {
      for (const mode of [0o644, 0o640, 0o604, 0o620]) {
        const file = join(dir, `password-${mode.toString(8)}.txt`);
        writeFileSync(file, `${PASSWORD}\n`);
        chmodSync(file, mode);
        const provider = open({ password: { file } });
        await assert.rejects(provider.getSystemKey(), {
          code: 'ERR_INVALID_CONFIG',
          details: { file, mode: `0${mode.toString(8)}` },
        });
        chmodSync(file, 0o600);
        (await provider.getSystemKey()).dispose();
      }
    });

    it('a missing password file is ERR_KEYSTORE_PASSWORD', async () => {
      await rejectsWithCode(
        open({ password: { file: 'no-such-password.txt' } }).getSystemKey(),
        'ERR_KEYSTORE_PASSWORD',
      );
    });
  });

  describe('resolveKeystoreConfig', () => {
    const base = { path: 'store.p12', password: { env: PASSWORD_ENV }, systemKeyAlias: 'SystemKey' };
    const invalid: Record<string, unknown> = {
      'missing systemKeyAlias': { path: 'store.p12', password: { env: PASSWORD_ENV } },
      'missing path': { password: { env: PASSWORD_ENV }, systemKeyAlias: 'SystemKey' },
      'missing password': { path: 'store.p12', systemKeyAlias: 'SystemKey' },
      'a password given inline': { ...base, password: PASSWORD },
      'both password sources': { ...base, password: { env: PASSWORD_ENV, file: 'p.txt' } },
      'a scope with a bad custodian': { ...base, scopes: { 'not base64!:ns': { alias: 'ScopeKey' } } },
      'a scope with an empty namespace': {
        ...base,
        scopes: { [`${SCOPE.custodian}:`]: { alias: 'ScopeKey' } },
      },
      'a scope with an empty alias': { ...base, scopes: { [scopeString(SCOPE)]: { alias: '' } } },
      'a scope with an unknown field': {
        ...base,
        scopes: { [scopeString(SCOPE)]: { alias: 'a', colour: 'blue' } },
      },
      'an unknown hbase property': { ...base, properties: { [`${HBASE}system.key.alias`]: 'SystemKey' } },
      'a property outside the keystore prefix': { ...base, properties: { 'hbase.other': 'x' } },
      'an hbase property with a bad custodian': {
        ...base,
        properties: { [`${HBASE}cust.not_base64!.ns.alias`]: 'ScopeKey' },
      },
      '.active that is not true/false': {
        ...base,
        properties: { [property(SCOPE, 'alias')]: 'ScopeKey', [property(SCOPE, 'active')]: 'yes' },
      },
      '.active without .alias': { ...base, properties: { [property(SCOPE, 'active')]: 'false' } },
      'an unknown field': { ...base, colour: 'blue' },
      'a scope served by the system key alias': {
        ...base,
        properties: { [property(SCOPE, 'alias')]: 'systemKEY' },
      },
      'not an object': 'store.p12',
    };
    for (const [what, input] of Object.entries(invalid)) {
      it(`rejects ${what} with ERR_INVALID_CONFIG`, () => {
        throwsWithCode(() => resolveKeystoreConfig(input, dir), 'ERR_INVALID_CONFIG');
      });
    }

    it('reads .active as Hadoop does: trimmed, in any case', () => {
      for (const [value, active] of [
        [' FALSE ', false],
        ['True', true],
      ] as const) {
        const config = resolveKeystoreConfig(
          {
            ...base,
            properties: { [property(SCOPE, 'alias')]: 'ScopeKey', [property(SCOPE, 'active')]: value },
          },
          dir,
        );
        assert.deepEqual([...config.scopes.values()], [{ alias: 'scopekey', active }]);
      }
    });

    it('resolves relative paths against baseDir and lower-cases aliases', () => {
      const config = resolveKeystoreConfig(
        { ...base, password: { file: 'pw.txt' }, scopes: { [scopeString(SCOPE)]: { alias: 'ScopeKey' } } },
        '/some/base',
      );
      assert.equal(config.path, '/some/base/store.p12');
      assert.deepEqual(config.password, { file: '/some/base/pw.txt' });
      assert.equal(config.systemKeyAlias, 'systemkey');
      assert.deepEqual(config.scopes.get(scopeKey(SCOPE)), { alias: 'scopekey', active: true });
    });
  });

  describe('Java interoperability', () => {
    it('the key bytes the provider returns equal what Java decrypts', async () => {
      // Only SCOPE is configured here, so every other alias reads as one of its earlier keys.
      const provider = open({ scopes: { [scopeString(SCOPE)]: { alias: 'ScopeKey' } } });
      for (const alias of ['scopekey', 'oldscopekey', 'inactivekey', 'mixedcase']) {
        const found = await unwrap(provider, aliasMetadata(alias, SCOPE));
        assert.ok(found.state === 'ACTIVE' || found.state === 'INACTIVE', alias);
        assert.equal(hex(found.key), javaHex.get(alias), alias);
      }
      const stk = await provider.getSystemKey();
      try {
        const javaStk = SecretBytes.copyOf(Buffer.from(javaHex.get('systemkey') ?? '', 'hex'));
        assert.equal(stk.identity, systemKeyIdentity(javaStk));
        // Ledgers written before identity version 2 recorded the checksum: it still names the STK.
        assert.ok(stk.names(keyChecksum(javaStk)));
      } finally {
        stk.dispose();
      }
    });
  });

  describe('re-reading the keystore', () => {
    it('sees an alias added with keytool after the first read, without disturbing earlier answers', async () => {
      await withTempDir(async (changing) => {
        const path = join(changing, 'changing.p12');
        keytoolGenSecKey(path, 'SystemKey', PASSWORD);
        keytoolGenSecKey(path, 'EarlyKey', PASSWORD);
        const early = keyScope(b64('cust-early'), 'ns');
        const provider = open(
          {
            path: 'changing.p12',
            scopes: {
              [scopeString(SCOPE)]: { alias: 'LateKey' },
              [scopeString(early)]: { alias: 'EarlyKey' },
            },
          },
          changing,
        );
        const stkBefore = await provider.getSystemKey();
        const earlyAnswer = await answer(provider, early);
        assert.equal(earlyAnswer.state, 'ACTIVE');
        const before = await answer(provider, SCOPE);
        assert.equal(before.state, 'FAILED');

        keytoolGenSecKey(path, 'LateKey', PASSWORD);
        const javaKeys = new Map((await javaSecretKeys(path, PASSWORD)).map((k) => [k.alias, k.hex]));

        const after = await answer(provider, SCOPE);
        assert.equal(after.state, 'ACTIVE');
        assert.equal(hex(after.key), javaKeys.get('latekey'));

        // What was handed out before the re-read is the caller's and still intact.
        assert.equal(earlyAnswer.key?.isZeroed, false);
        assert.equal(hex(earlyAnswer.key), javaKeys.get('earlykey'));
        const stkAfter = await provider.getSystemKey();
        try {
          assert.equal(stkAfter.identity, stkBefore.identity);
          const binding = { ...SCOPE, metadataHash: metadataHashOf(after.metadata ?? '') };
          assert.ok(after.key !== null);
          const wrapped = stkBefore.wrap(after.key, binding);
          const unwrapped = stkAfter.unwrap(wrapped, binding, null);
          assert.ok(unwrapped.equals(after.key));
          unwrapped.zero();
        } finally {
          stkBefore.dispose();
          stkAfter.dispose();
        }
      });
    });
  });
});
