import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import { type KeyScope, keyScope, scopeKey } from '../../src/domain/identities.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { formatKeyMetadata, parseKeyMetadata } from '../../src/providers/keyMetadata.js';
import { resolveKeystoreConfig } from '../../src/providers/keystore/keystoreConfig.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import type { ManagedKeyData, WrappedKeyMaterial } from '../../src/providers/managedKeyProvider.js';
import { javaSecretKeys, keytoolGenSecKey, requireKeytool } from '../helpers/keytool.js';
import { holdTempDir, materialFor, rejectsWithCode, testKeyProvider } from './keyProvider.contract.js';

const PASSWORD = 'generated-Test-1';

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

/** A keystore provider over `dir/store.p12`, the system keys of a generated provider. */
function keystore(
  dir: string,
  env: string,
  systemKeyAlias: string,
  scopes: Record<string, { alias: string }> = {},
  previousSystemKeyAliases: string[] = [],
) {
  return new KeystoreKeyProvider(
    resolveKeystoreConfig(
      { path: 'store.p12', password: { env }, systemKeyAlias, previousSystemKeyAliases, scopes },
      dir,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// The contract, over a keytool-made keystore holding the system key

const CONTRACT_SCOPE = keyScope(b64('generated-custodian'), 'table1/cf1');
const CONTRACT_PASSWORD_ENV = 'KEYLEDGER_GENERATED_CONTRACT_PASSWORD';

testKeyProvider('generated over keystore', async () => {
  requireKeytool();
  const held = await holdTempDir();
  try {
    keytoolGenSecKey(join(held.dir, 'store.p12'), 'SystemKey', PASSWORD);
    const javaKeys = await javaSecretKeys(join(held.dir, 'store.p12'), PASSWORD);
    process.env[CONTRACT_PASSWORD_ENV] = PASSWORD;
    return {
      provider: new GeneratedKeyProvider({
        systemKeys: keystore(held.dir, CONTRACT_PASSWORD_ENV, 'SystemKey'),
      }),
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
// Generated-specific behaviour

const PASSWORD_ENV = 'KEYLEDGER_GENERATED_PASSWORD';
const SCOPE = keyScope(b64('cust-generated'), 'ns');
const OTHER_SCOPE = keyScope(b64('cust-generated'), 'other-ns');

describe('GeneratedKeyProvider', () => {
  let dir = '';
  let release: () => Promise<void> = async () => {};
  let provider: GeneratedKeyProvider;
  const providers: GeneratedKeyProvider[] = [];
  const handles: SystemKeyHandle[] = [];
  const answers: ManagedKeyData[] = [];

  before(async () => {
    requireKeytool();
    const held = await holdTempDir();
    dir = held.dir;
    release = held.release;
    const path = join(dir, 'store.p12');
    for (const alias of ['SystemKey', 'NextSystemKey', 'ScopeKey']) keytoolGenSecKey(path, alias, PASSWORD);
    process.env[PASSWORD_ENV] = PASSWORD;
    provider = open('SystemKey');
  });

  after(async () => {
    for (const handle of handles) handle.dispose();
    for (const answer of answers) answer.key?.zero();
    for (const opened of providers) await opened.close();
    delete process.env[PASSWORD_ENV];
    await release();
  });

  function open(systemKeyAlias: string, previous: string[] = []): GeneratedKeyProvider {
    const opened = new GeneratedKeyProvider({
      systemKeys: keystore(
        dir,
        PASSWORD_ENV,
        systemKeyAlias,
        { [scopeKey(SCOPE)]: { alias: 'ScopeKey' } },
        previous,
      ),
    });
    providers.push(opened);
    return opened;
  }

  async function systemKey(from = provider): Promise<SystemKeyHandle> {
    const handle = await from.getSystemKey();
    handles.push(handle);
    return handle;
  }

  async function generate(scope: KeyScope = SCOPE): Promise<ManagedKeyData & { metadata: string }> {
    const answer = await provider.getManagedKey(scope);
    answers.push(answer);
    assert.equal(answer.state, 'ACTIVE');
    assert.ok(answer.metadata !== null);
    return { ...answer, metadata: answer.metadata };
  }

  async function unwrap(
    metadata: string,
    material: WrappedKeyMaterial | null,
    from = provider,
  ): Promise<ManagedKeyData> {
    const answer = await from.unwrapKey(metadata, material);
    answers.push(answer);
    return answer;
  }

  it('every getManagedKey call mints a new key with new metadata', async () => {
    const first = await generate();
    const second = await generate();
    assert.notEqual(second.metadata, first.metadata);
    assert.ok(first.key !== null && second.key !== null);
    assert.equal(first.key.equals(second.key), false);
    for (const answer of [first, second]) {
      const parsed = parseKeyMetadata(answer.metadata);
      assert.equal(parsed.kind, 'generated');
      assert.equal(formatKeyMetadata(parsed), answer.metadata);
      assert.equal(parsed.scope.custodian, SCOPE.custodian);
      assert.equal(parsed.scope.namespace, SCOPE.namespace);
    }
  });

  it('unwrapKey without material is FAILED, with the canonical metadata and no key', async () => {
    const answer = await generate();
    const found = await unwrap(answer.metadata, null);
    assert.deepEqual({ ...found }, { ...SCOPE, state: 'FAILED', metadata: answer.metadata, key: null });
  });

  it('unwrapKey with material whose stkIdentity does not match its system key is FAILED', async () => {
    const answer = await generate();
    const handle = await systemKey();
    const material = materialFor(handle, answer);
    const found = await unwrap(answer.metadata, { ...material, stkIdentity: '0000000000000000' });
    assert.equal(found.state, 'FAILED');
    assert.equal(found.key, null);
    assert.equal(found.metadata, answer.metadata);

    // Wrapped under the next system key but recorded as wrapped under the current one.
    const next = await systemKey(open('NextSystemKey'));
    const misrecorded = { ...materialFor(next, answer), stkMetadata: handle.metadata };
    const again = await unwrap(answer.metadata, misrecorded);
    assert.equal(again.state, 'FAILED');
    assert.equal(again.key, null);
  });

  it('tampered material is ERR_KEY_UNWRAP_FAILED', async () => {
    const answer = await generate();
    const handle = await systemKey();
    const material = materialFor(handle, answer);
    const bytes = Buffer.from(material.wrapped, 'base64');
    for (const index of [0, 1, 20, bytes.length - 1]) {
      const tampered = Buffer.from(bytes);
      tampered[index] = (tampered[index] ?? 0) ^ 0x01;
      await rejectsWithCode(
        provider.unwrapKey(answer.metadata, { ...material, wrapped: tampered.toString('base64') }),
        'ERR_KEY_UNWRAP_FAILED',
      );
    }
    await rejectsWithCode(
      provider.unwrapKey(answer.metadata, { ...material, wrapped: bytes.subarray(0, 40).toString('base64') }),
      'ERR_KEY_UNWRAP_FAILED',
    );
    await rejectsWithCode(
      provider.unwrapKey(answer.metadata, { ...material, wrapped: '' }),
      'ERR_KEY_UNWRAP_FAILED',
    );
  });

  it('material moved to another key or another scope is ERR_KEY_UNWRAP_FAILED', async () => {
    const answer = await generate();
    const other = await generate();
    const handle = await systemKey();
    const material = materialFor(handle, answer);
    await rejectsWithCode(provider.unwrapKey(other.metadata, material), 'ERR_KEY_UNWRAP_FAILED');
    const parsed = parseKeyMetadata(answer.metadata);
    assert.equal(parsed.kind, 'generated');
    const moved = formatKeyMetadata({ ...parsed, scope: OTHER_SCOPE });
    await rejectsWithCode(provider.unwrapKey(moved, material), 'ERR_KEY_UNWRAP_FAILED');
  });

  it('metadata of an alias (keystore) key is FAILED, with or without material', async () => {
    const aliases = keystore(dir, PASSWORD_ENV, 'SystemKey', { [scopeKey(SCOPE)]: { alias: 'ScopeKey' } });
    const keystoreAnswer = await aliases.getManagedKey(SCOPE);
    await aliases.close();
    assert.ok(keystoreAnswer !== null && keystoreAnswer.metadata !== null);
    answers.push(keystoreAnswer);
    assert.equal(keystoreAnswer.state, 'ACTIVE');
    const withoutMaterial = await unwrap(keystoreAnswer.metadata, null);
    assert.equal(withoutMaterial.state, 'FAILED');
    assert.equal(withoutMaterial.key, null);
    assert.equal(withoutMaterial.metadata, keystoreAnswer.metadata);
    const handle = await systemKey();
    const withMaterial = await unwrap(keystoreAnswer.metadata, materialFor(handle, keystoreAnswer));
    assert.equal(withMaterial.state, 'FAILED');
    assert.equal(withMaterial.key, null);
  });

  it('material wrapped under an earlier system key unwraps after the system key changes', async () => {
    const answer = await generate();
    const earlier = await systemKey();
    const material = materialFor(earlier, answer);
    const rotated = open('NextSystemKey', ['SystemKey']);
    const current = await systemKey(rotated);
    assert.notEqual(current.identity, earlier.identity);
    const found = await unwrap(answer.metadata, material, rotated);
    // Unless the earlier alias is configured as a previous system key, it is not one any more.
    await assert.rejects(unwrap(answer.metadata, material, open('NextSystemKey')), {
      code: 'ERR_SYSTEM_KEY_NOT_CONFIGURED',
    });
    assert.equal(found.state, 'ACTIVE');
    assert.ok(found.key !== null && answer.key !== null && found.key.equals(answer.key));
    assert.equal(found.metadata, answer.metadata);
  });

  it('system keys come from the underlying keystore', async () => {
    const inner = keystore(dir, PASSWORD_ENV, 'SystemKey');
    const fromInner = await inner.getSystemKey();
    handles.push(fromInner);
    await inner.close();
    const fromGenerated = await systemKey();
    assert.equal(fromGenerated.identity, fromInner.identity);
    assert.equal(fromGenerated.metadata, fromInner.metadata);
    const byMetadata = await provider.unwrapSystemKey(fromInner.metadata);
    handles.push(byMetadata);
    assert.equal(byMetadata.identity, fromInner.identity);
  });
});
