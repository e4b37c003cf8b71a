import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import { formatScope, type KeyScope } from '../domain/identities.js';
import type { KeyInfo } from '../ledger/keyInfo.js';
import { keyRefField, metadataHashOf, parseKeyRef, parseScopeArg, scopeField } from './identityArgs.js';
import { defineOperation, type OperationHost } from './operation.js';
import { plain } from './plain.js';

/** Who acts and why, as every write records it. */
export function actedBy(host: OperationHost) {
  return {
    actor: host.actor,
    reason: host.reason,
    ...(host.correlationId === undefined ? {} : { correlationId: host.correlationId }),
  };
}

/** A key as every result shows it (KeyInfo is plain data already: strings and null). */
export function keyOut(key: KeyInfo): KeyInfo {
  return {
    custodian: key.custodian,
    namespace: key.namespace,
    state: key.state,
    metadataHash: key.metadataHash,
    checksum: key.checksum,
    refreshedAt: key.refreshedAt,
    keyId: key.keyId,
    metadata: key.metadata,
    stkIdentity: key.stkIdentity,
    createdAt: key.createdAt,
    updatedAt: key.updatedAt,
    destructionDueAt: key.destructionDueAt,
  };
}

const scopeInput = z.strictObject({ scope: scopeField });
const scopeKeyInput = z.strictObject({ scope: scopeField, key: keyRefField });
const scopeOf = (input: { scope: string }) => parseScopeArg(input.scope);
const custodianOfScope = (input: { scope: string }) => parseScopeArg(input.scope).custodian;

/** Scopes one enable-key-management call takes at most. */
export const MAX_ENABLE_SCOPES = 100_000;

const enableInput = z.strictObject({
  scope: scopeField.optional(),
  scopes: z
    .array(scopeField)
    .max(MAX_ENABLE_SCOPES)
    .describe('more scopes, enabled together (the CLI also reads them from --file, one per line)')
    .optional(),
});

/** Every scope named, checked before anything is opened (a bad one: ERR_INVALID_ARGUMENT, nothing written). */
function enableScopes(input: z.infer<typeof enableInput>) {
  const texts = [...(input.scope === undefined ? [] : [input.scope]), ...(input.scopes ?? [])];
  if (texts.length === 0)
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'enable-key-management takes at least one scope', {
      scope: 'required (or scopes)',
    });
  return { scopes: texts.map(parseScopeArg), many: input.scopes !== undefined };
}

export const enableKeyManagement = defineOperation({
  name: 'enable-key-management',
  summary: 'enable key management for one or more scopes: record the provider’s ACTIVE key',
  description:
    'Several scopes (arguments, or --file with one scope per line) are enabled together, checked\nfirst: a bad one refuses all of them. The result then lists each scope.',
  input: enableInput,
  permission: 'operate',
  // One custodian's scopes need a grant on it; scopes of several custodians, a ledger-wide grant.
  custodianOf: (input) => {
    const custodians = new Set(enableScopes(input).scopes.map((s) => s.custodian));
    return custodians.size === 1 ? ([...custodians][0] as string) : null;
  },
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope', 'scopes'], linesFrom: { flag: 'file', field: 'scopes' } },
  prepare: enableScopes,
  async run({ scopes, many }, host) {
    const ledger = await host.ledger();
    const [one] = scopes;
    if (!many && one !== undefined) {
      const r = await ledger.admin.enableKeyManagement(one.custodian, one.namespace, actedBy(host));
      return plain({ marker: r.marker, key: r.key && keyOut(r.key), position: r.position });
    }
    const results = await ledger.admin.enableKeyManagementMany(scopes, actedBy(host));
    return plain({
      enabled: results.length,
      results: results.map((r, i) => ({
        scope: formatScope(scopes[i] as KeyScope),
        marker: r.marker,
        metadataHash: r.key?.metadataHash ?? null,
        position: r.position,
      })),
    });
  },
});

export const disableKeyManagement = defineOperation({
  name: 'disable-key-management',
  summary: 'disable a scope; its ACTIVE key becomes INACTIVE',
  input: scopeInput,
  permission: 'operate',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: scopeOf,
  async run(scope, host) {
    const ledger = await host.ledger();
    const r = await ledger.admin.disableKeyManagement(scope.custodian, scope.namespace, actedBy(host));
    const keys = await ledger.admin.getManagedKeys(scope.custodian, scope.namespace);
    return plain({ position: r.position, keys: keys.map(keyOut) });
  },
});

export const disableManagedKey = defineOperation({
  name: 'disable-managed-key',
  summary: 'disable one key (ACTIVE or INACTIVE → DISABLED)',
  input: scopeKeyInput,
  permission: 'operate',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope', 'key'] },
  prepare: (input) => ({ scope: scopeOf(input), key: parseKeyRef(input.key) }),
  async run({ scope, key }, host) {
    const ledger = await host.ledger();
    const hash = await metadataHashOf(ledger, scope, key);
    const r = await ledger.admin.disableManagedKey(scope.custodian, scope.namespace, hash, actedBy(host));
    return plain({ position: r.position, key: keyOut(r.key) });
  },
});

export const enableManagedKey = defineOperation({
  name: 'enable-managed-key',
  summary: 're-enable a DISABLED key as INACTIVE',
  input: scopeKeyInput,
  permission: 'operate',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope', 'key'] },
  prepare: (input) => ({ scope: scopeOf(input), key: parseKeyRef(input.key) }),
  async run({ scope, key }, host) {
    const ledger = await host.ledger();
    const hash = await metadataHashOf(ledger, scope, key);
    const r = await ledger.admin.enableManagedKey(scope.custodian, scope.namespace, hash, actedBy(host));
    return plain({ position: r.position, key: keyOut(r.key) });
  },
});

export const rotateManagedKey = defineOperation({
  name: 'rotate-managed-key',
  summary: 'make the provider’s new key ACTIVE, the old one INACTIVE',
  input: scopeInput,
  permission: 'operate',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: scopeOf,
  async run(scope, host) {
    const ledger = await host.ledger();
    const r = await ledger.admin.rotateManagedKey(scope.custodian, scope.namespace, actedBy(host));
    const keys = await ledger.admin.getManagedKeys(scope.custodian, scope.namespace);
    return plain({
      rotated: r !== null,
      position: r?.position ?? null,
      key: r === null ? null : keyOut(r.key),
      keys: keys.map(keyOut),
    });
  },
});

export const refreshManagedKeys = defineOperation({
  name: 'refresh-managed-keys',
  summary: 're-check every key of a scope with the provider',
  input: scopeInput,
  permission: 'operate',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: scopeOf,
  async run(scope, host) {
    const ledger = await host.ledger();
    const r = await ledger.admin.refreshManagedKeys(scope.custodian, scope.namespace, actedBy(host));
    return plain({ position: r.position, skipped: r.skipped, keys: r.keys.map(keyOut) });
  },
});

export const setManagedKey = defineOperation({
  name: 'set-managed-key',
  summary: 'make the key the provider’s metadata names the ACTIVE key',
  description:
    'The key is named by the provider’s metadata (the `metadata` field of show-key-status --json), not\nby its hash: it may be a key the ledger does not know yet.',
  input: z.strictObject({
    scope: scopeField,
    metadata: z.string().min(1).describe('the provider’s metadata string of the key'),
  }),
  permission: 'admin',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope', 'metadata'] },
  prepare: (input) => ({ scope: scopeOf(input), metadata: input.metadata }),
  async run({ scope, metadata }, host) {
    const ledger = await host.ledger();
    const r = await ledger.admin.setManagedKey(scope.custodian, scope.namespace, metadata, actedBy(host));
    const keys = await ledger.admin.getManagedKeys(scope.custodian, scope.namespace);
    return plain({ position: r.position, key: keyOut(r.key), keys: keys.map(keyOut) });
  },
});

export const rotateStk = defineOperation({
  name: 'rotate-stk',
  summary: 'record the provider’s current system key if it is new',
  input: z.strictObject({}),
  permission: 'admin',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  prepare: () => null,
  async run(_p, host) {
    const ledger = await host.ledger();
    return plain(await ledger.admin.rotateSTK(actedBy(host)));
  },
});

export const ejectCacheEntry = defineOperation({
  name: 'eject-cache-entry',
  summary: 'evict a scope’s (or one key’s) cache entries in every process',
  input: z.strictObject({ scope: scopeField, key: keyRefField.optional() }),
  permission: 'operate',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: (input) => ({
    scope: scopeOf(input),
    key: input.key === undefined ? undefined : parseKeyRef(input.key),
  }),
  async run({ scope, key }, host) {
    const ledger = await host.ledger();
    const hash = key === undefined ? undefined : await metadataHashOf(ledger, scope, key);
    const r = await ledger.admin.ejectManagedKeyDataCacheEntry(
      scope.custodian,
      scope.namespace,
      hash,
      actedBy(host),
    );
    return plain({ position: r.position });
  },
});

export const clearCache = defineOperation({
  name: 'clear-cache',
  summary: 'evict every cache entry in every process',
  input: z.strictObject({}),
  permission: 'operate',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  prepare: () => null,
  async run(_p, host) {
    const ledger = await host.ledger();
    return plain({ position: (await ledger.admin.clearManagedKeyDataCache(actedBy(host))).position });
  },
});

export const importManagedKey = defineOperation({
  name: 'import-managed-key',
  summary: 'record a key that already exists under a keystore alias as a key of a scope',
  description:
    'Records ManagedKeyImported with its origin (alias, checksum). ACTIVE (the default) makes it the\nscope’s ACTIVE key, as set-managed-key does; --inactive records it for decryption only. A key\nalready recorded under another scope is refused (ERR_KEY_IN_OTHER_SCOPE). docs/migration.md.',
  input: z.strictObject({
    scope: scopeField,
    alias: z.string().min(1).max(255).describe('the keystore alias of the key'),
    inactive: z.boolean().optional().describe('record it INACTIVE (decrypt only) instead of ACTIVE'),
  }),
  permission: 'admin',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: (input) => ({
    scope: scopeOf(input),
    alias: input.alias,
    as: input.inactive === true ? ('INACTIVE' as const) : ('ACTIVE' as const),
  }),
  async run({ scope, alias, as }, host) {
    const ledger = await host.ledger();
    const r = await ledger.imports.importManagedKey(
      scope.custodian,
      scope.namespace,
      alias,
      as,
      actedBy(host),
    );
    return plain({ position: r.position, key: keyOut(r.key) });
  },
});

export const ADMIN_OPERATIONS = [
  enableKeyManagement,
  disableKeyManagement,
  disableManagedKey,
  enableManagedKey,
  rotateManagedKey,
  refreshManagedKeys,
  setManagedKey,
  importManagedKey,
  rotateStk,
  ejectCacheEntry,
  clearCache,
] as const;
