import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { keyChecksum } from '../../src/crypto/keyChecksum.js';
import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import {
  custodianBytes,
  custodianFromBytes,
  type KeyScope,
  type MetadataHash,
  parseNamespace,
} from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { formatKeyMetadata, parseKeyMetadata } from '../../src/providers/keyMetadata.js';
import type {
  ManagedKeyData,
  ManagedKeyProvider,
  WrappedKeyMaterial,
} from '../../src/providers/managedKeyProvider.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { withTempDir } from '../helpers/keytool.js';

/**
 * What a provider's test file hands the contract.
 *
 * - `provider`: the provider under test, ready to answer.
 * - `configuredScope`: a scope for which `getManagedKey` must answer ACTIVE with a key.
 * - `cleanup()`: closes whatever the fixture opened and removes its files; called once, after the
 *   provider has been closed.
 * - `knownKeyBytes` (optional): raw bytes of keys the fixture knows the provider holds (e.g. the
 *   system key, as Java decrypts it from the keystore). No rendering of any answer or system key
 *   handle may contain them, in addition to the bytes of the DEKs the provider returns.
 */
export interface ProviderFixture {
  readonly provider: ManagedKeyProvider;
  readonly configuredScope: KeyScope;
  readonly knownKeyBytes?: readonly Uint8Array[];
  cleanup(): Promise<void>;
}

export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal((error as { code?: unknown }).code, code);
    return true;
  });
}

export function throwsWithCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.equal((error as { code?: unknown }).code, code);
    return true;
  });
}

/**
 * A temporary directory (made and removed by withTempDir) that outlives one callback: it stays until
 * `release()` is awaited, so a fixture can keep it from its factory to its cleanup.
 */
export function holdTempDir(): Promise<{ readonly dir: string; release(): Promise<void> }> {
  return new Promise((resolveHeld, rejectHeld) => {
    let letGo: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    const removed: Promise<void> = withTempDir(async (dir) => {
      resolveHeld({
        dir,
        release: async () => {
          letGo();
          await removed;
        },
      });
      await released;
    });
    removed.catch(rejectHeld);
  });
}

/** The ledger's wrapped copy of `answer`'s key, as it would record it under `handle`. */
export function materialFor(handle: SystemKeyHandle, answer: ManagedKeyData): WrappedKeyMaterial {
  assert.ok(answer.key !== null && answer.metadata !== null, 'the answer has a key and metadata');
  return {
    wrapped: handle.wrap(answer.key, {
      custodian: answer.custodian,
      namespace: answer.namespace,
      metadataHash: metadataHashOf(answer.metadata),
    }),
    stkIdentity: handle.identity,
    stkMetadata: handle.metadata,
  };
}

/** Every way the bytes could plausibly show up in a string. */
function encodingsOf(bytes: Uint8Array): string[] {
  const buffer = Buffer.from(bytes);
  return [
    buffer.toString('hex'),
    buffer.toString('hex').toUpperCase(),
    buffer.toString('base64'),
    buffer.toString('base64url'),
    Array.from(buffer).join(','),
    Array.from(buffer, (byte, index) => `"${index}":${byte}`).join(','),
  ];
}

/** The renderings a log line, an error message or a debugger would produce. */
function renderingsOf(value: unknown): string[] {
  return [
    JSON.stringify(value) ?? '',
    String(value),
    `${value}`,
    inspect(value),
    inspect(value, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
    inspect(value, { showHidden: true, depth: Number.POSITIVE_INFINITY, customInspect: false }),
  ];
}

function assertReveals(value: unknown, secrets: readonly Uint8Array[], what: string): void {
  const renderings = renderingsOf(value);
  for (const secret of secrets) {
    for (const encoded of encodingsOf(secret)) {
      for (const rendered of renderings) {
        // Without whitespace too: util.inspect spaces out and wraps the bytes of a Buffer or array.
        const packed = rendered.replace(/\s+/g, '');
        assert.ok(
          !rendered.includes(encoded) && !packed.includes(encoded),
          `${what} reveals key bytes: ${rendered.slice(0, 200)}`,
        );
      }
    }
  }
}

function otherScopes(scope: KeyScope): KeyScope[] {
  const custodian = custodianFromBytes(Buffer.concat([custodianBytes(scope.custodian), Buffer.of(0x01)]));
  const namespace = parseNamespace(`${scope.namespace === '*' ? 'ns' : scope.namespace}-other`);
  return [
    { custodian, namespace: scope.namespace },
    { custodian: scope.custodian, namespace },
  ];
}

function assertCanonicalMetadata(metadata: string, scope: KeyScope): void {
  const parsed = parseKeyMetadata(metadata);
  assert.equal(formatKeyMetadata(parsed), metadata, 'metadata is in canonical form');
  assert.equal(parsed.scope.custodian, scope.custodian);
  assert.equal(parsed.scope.namespace, scope.namespace);
}

/**
 * The ManagedKeyProvider contract (src/providers/managedKeyProvider.ts): every provider passes it.
 * One fixture is shared by the tests of a run; `close()` is checked on a fixture of its own.
 */
export function testKeyProvider(name: string, factory: () => Promise<ProviderFixture>): void {
  describe(`ManagedKeyProvider contract: ${name}`, () => {
    let fixture: ProviderFixture;
    let provider: ManagedKeyProvider;
    let scope: KeyScope;
    const handles: SystemKeyHandle[] = [];
    const keys: SecretBytes[] = [];

    async function systemKey(): Promise<SystemKeyHandle> {
      const handle = await provider.getSystemKey();
      handles.push(handle);
      return handle;
    }

    async function activeKey(): Promise<ManagedKeyData & { key: SecretBytes; metadata: string }> {
      const answer = await provider.getManagedKey(scope);
      assert.ok(answer !== null, 'the configured scope has an answer');
      if (answer.key !== null) keys.push(answer.key);
      assert.equal(answer.state, 'ACTIVE');
      assert.ok(answer.key !== null && answer.metadata !== null);
      return { ...answer, key: answer.key, metadata: answer.metadata };
    }

    before(async () => {
      fixture = await factory();
      provider = fixture.provider;
      scope = fixture.configuredScope;
    });

    after(async () => {
      for (const handle of handles) handle.dispose();
      for (const key of keys) key.zero();
      await fixture.provider.close();
      await fixture.cleanup();
    });

    describe('system key', () => {
      it('getSystemKey returns a handle with a 16-hex identity and non-empty metadata', async () => {
        const handle = await systemKey();
        assert.match(handle.identity, /^[0-9a-f]{16}$/);
        assert.equal(typeof handle.metadata, 'string');
        assert.ok(handle.metadata.length > 0);
      });

      it('two calls give the same system key', async () => {
        const first = await systemKey();
        const second = await systemKey();
        assert.equal(second.identity, first.identity);
        assert.equal(second.metadata, first.metadata);
      });

      it('unwrapSystemKey(metadata) gives the same system key', async () => {
        const current = await systemKey();
        const again = await provider.unwrapSystemKey(current.metadata);
        handles.push(again);
        assert.equal(again.identity, current.identity);
        assert.equal(again.metadata, current.metadata);
      });

      it('a DEK wrapped by one handle unwraps with another handle of the same system key', async () => {
        const current = await systemKey();
        const other = await provider.unwrapSystemKey(current.metadata);
        handles.push(other);
        const dek = testDek();
        keys.push(dek);
        const binding = { ...scope, metadataHash: metadataHashOf('contract-dek') };
        const wrapped = current.wrap(dek, binding);
        const unwrapped = other.unwrap(wrapped, binding, keyChecksum(dek));
        keys.push(unwrapped);
        assert.ok(unwrapped.equals(dek));
        const again = other.unwrap(wrapped, binding, null);
        keys.push(again);
        assert.ok(again.equals(dek));
      });

      it('unwrapping under a different binding or checksum fails with ERR_KEY_UNWRAP_FAILED', async () => {
        const current = await systemKey();
        const other = await provider.unwrapSystemKey(current.metadata);
        handles.push(other);
        const dek = testDek();
        keys.push(dek);
        const binding = { ...scope, metadataHash: metadataHashOf('contract-dek') };
        const wrapped = current.wrap(dek, binding);
        const wrongBindings = [
          ...otherScopes(scope).map((s) => ({ ...binding, ...s })),
          { ...binding, metadataHash: metadataHashOf('another key') as MetadataHash },
        ];
        for (const wrong of wrongBindings) {
          throwsWithCode(() => other.unwrap(wrapped, wrong, null), 'ERR_KEY_UNWRAP_FAILED');
        }
        throwsWithCode(() => other.unwrap(wrapped, binding, '0000000000000000'), 'ERR_KEY_UNWRAP_FAILED');
      });
    });

    describe('managed keys', () => {
      it('getManagedKey(configured scope) answers ACTIVE with canonical metadata and a 32-byte key', async () => {
        const answer = await provider.getManagedKey(scope);
        assert.ok(answer !== null);
        if (answer.key !== null) keys.push(answer.key);
        assert.equal(answer.state, 'ACTIVE');
        assert.equal(answer.custodian, scope.custodian);
        assert.equal(answer.namespace, scope.namespace);
        assert.equal(typeof answer.metadata, 'string');
        assertCanonicalMetadata(answer.metadata ?? '', scope);
        assert.ok(answer.key instanceof SecretBytes, 'the key is SecretBytes');
        assert.equal(answer.key.length, 32);
        assert.equal(answer.key.isZeroed, false);
      });

      it("unwrapKey(metadata, the ledger's wrapped copy) gives a usable state, the same bytes and metadata", async () => {
        const handle = await systemKey();
        const answer = await activeKey();
        const material = materialFor(handle, answer);
        const unwrapped = await provider.unwrapKey(answer.metadata, material);
        if (unwrapped.key !== null) keys.push(unwrapped.key);
        assert.ok(
          unwrapped.state === 'ACTIVE' || unwrapped.state === 'INACTIVE',
          `usable state, got ${unwrapped.state}`,
        );
        assert.equal(unwrapped.custodian, scope.custodian);
        assert.equal(unwrapped.namespace, scope.namespace);
        assert.equal(unwrapped.metadata, answer.metadata);
        assert.ok(unwrapped.key instanceof SecretBytes);
        assert.ok(unwrapped.key.equals(answer.key), 'the same key bytes');
      });

      it('the key the provider hands out is the caller’s own: zeroing it does not affect later answers', async () => {
        const handle = await systemKey();
        const answer = await activeKey();
        const material = materialFor(handle, answer);
        const copy = answer.key.clone();
        keys.push(copy);
        answer.key.zero();
        const unwrapped = await provider.unwrapKey(answer.metadata, material);
        assert.ok(unwrapped.key !== null);
        keys.push(unwrapped.key);
        assert.ok(unwrapped.key.equals(copy));
        const handleAgain = await systemKey();
        assert.equal(handleAgain.identity, handle.identity);
      });

      it('unwrapKey rejects metadata that is not JSON with ERR_INVALID_METADATA', async () => {
        await rejectsWithCode(provider.unwrapKey('not json', null), 'ERR_INVALID_METADATA');
      });

      it('unwrapKey rejects metadata with an empty custodian with ERR_INVALID_METADATA', async () => {
        await rejectsWithCode(provider.unwrapKey('{"KeyCustodian":""}', null), 'ERR_INVALID_METADATA');
      });

      it('unwrapKey rejects other malformed metadata with ERR_INVALID_METADATA', async () => {
        for (const metadata of [
          'null',
          '[]',
          '"text"',
          '{}',
          '{"KeyAlias":"a"}',
          '{"KeyAlias":"","KeyCustodian":"Kg=="}',
        ]) {
          await rejectsWithCode(provider.unwrapKey(metadata, null), 'ERR_INVALID_METADATA');
        }
      });

      it('unwrapKey rejects metadata whose custodian or namespace is invalid with ERR_INVALID_METADATA', async () => {
        const cases = [
          JSON.stringify({ KeyAlias: 'a', KeyCustodian: 'not base64!' }),
          JSON.stringify({ KeyAlias: 'a', KeyCustodian: scope.custodian, KeyNamespace: 'n'.repeat(256) }),
        ];
        for (const metadata of cases) {
          await rejectsWithCode(provider.unwrapKey(metadata, null), 'ERR_INVALID_METADATA');
        }
      });
    });

    describe('secrecy', () => {
      it('answers and handles never reveal key bytes through JSON.stringify, String() or util.inspect', async () => {
        const handle = await systemKey();
        const answer = await activeKey();
        const material = materialFor(handle, answer);
        const unwrapped = await provider.unwrapKey(answer.metadata, material);
        if (unwrapped.key !== null) keys.push(unwrapped.key);
        const secrets = [Buffer.from(answer.key.expose()), ...(fixture.knownKeyBytes ?? [])];
        assertReveals(answer, secrets, 'getManagedKey answer');
        assertReveals(answer.key, secrets, 'getManagedKey key');
        assertReveals(unwrapped, secrets, 'unwrapKey answer');
        assertReveals(unwrapped.key, secrets, 'unwrapKey key');
        assertReveals(handle, secrets, 'system key handle');
        assertReveals(material, secrets, 'wrapped material');
      });
    });

    function testDek(): SecretBytes {
      return SecretBytes.copyOf(Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff)));
    }
  });

  describe(`ManagedKeyProvider contract: ${name} (close)`, () => {
    it('close() resolves', async () => {
      const fixture = await factory();
      try {
        const handle = await fixture.provider.getSystemKey();
        handle.dispose();
        await fixture.provider.close();
      } finally {
        await fixture.cleanup();
      }
    });
  });
}
