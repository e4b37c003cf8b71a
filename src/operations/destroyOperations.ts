import { z } from 'zod';
import { actedBy, keyOut } from './adminOperations.js';
import { GRACE_PERIOD_FORMAT, parseGracePeriod } from './gracePeriod.js';
import { keyRefField, metadataHashOf, parseKeyRef, parseScopeArg, scopeField } from './identityArgs.js';
import { defineOperation } from './operation.js';
import { plain } from './plain.js';
import { invalidArgument } from './queryOperations.js';

const scopeKeyInput = { scope: scopeField, key: keyRefField };
const custodianOfScope = (input: { scope: string }) => parseScopeArg(input.scope).custodian;

export const destroyManagedKey = defineOperation({
  name: 'destroy-managed-key',
  summary: 'schedule an INACTIVE or DISABLED key’s destruction (crypto-shredding) after a grace period',
  input: z.strictObject({
    ...scopeKeyInput,
    grace: z
      .string()
      .describe('the grace period: <n>s|m|h|d|w (default: config destroyGracePeriod, else 7d)')
      .optional(),
  }),
  permission: 'admin',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope', 'key'], placeholders: { grace: 'duration' } },
  prepare: (input) => {
    let graceMs: number | undefined;
    if (input.grace !== undefined) {
      const parsed = parseGracePeriod(input.grace);
      if (parsed === null) throw invalidArgument(`--grace must be ${GRACE_PERIOD_FORMAT}`);
      graceMs = parsed;
    }
    return { scope: parseScopeArg(input.scope), key: parseKeyRef(input.key), graceMs };
  },
  async run({ scope, key, graceMs }, host) {
    const ledger = await host.ledger();
    const hash = await metadataHashOf(ledger, scope, key);
    const r = await ledger.destruction.scheduleKeyDestruction(scope.custodian, scope.namespace, hash, {
      ...actedBy(host),
      graceMs,
    });
    return plain({ position: r.position, dueAt: r.key.destructionDueAt, key: keyOut(r.key) });
  },
});

export const cancelDestroy = defineOperation({
  name: 'cancel-destroy',
  summary: 'cancel a scheduled destruction that has not run',
  input: z.strictObject(scopeKeyInput),
  permission: 'admin',
  custodianOf: custodianOfScope,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope', 'key'] },
  prepare: (input) => ({ scope: parseScopeArg(input.scope), key: parseKeyRef(input.key) }),
  async run({ scope, key }, host) {
    const ledger = await host.ledger();
    const hash = await metadataHashOf(ledger, scope, key);
    const r = await ledger.destruction.cancelKeyDestruction(
      scope.custodian,
      scope.namespace,
      hash,
      actedBy(host),
    );
    return plain({ position: r.position, key: keyOut(r.key) });
  },
});

export const destroyDueKeys = defineOperation({
  name: 'destroy-due-keys',
  summary: 'destroy every key whose destruction is due: delete its material, record a receipt',
  input: z.strictObject({}),
  permission: 'operate',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  prepare: () => null,
  async run(_p, host) {
    return plain(await (await host.ledger()).destruction.destroyDueKeys(actedBy(host)));
  },
});

export const destructionReceipts = defineOperation({
  name: 'destruction-receipts',
  summary: 'the receipts of a scope’s destroyed keys',
  input: z.strictObject({ scope: scopeField }),
  permission: 'audit',
  custodianOf: custodianOfScope,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: (input) => parseScopeArg(input.scope),
  async run(scope, host) {
    return plain(
      await (await host.ledger()).destruction.destructionReceipts(scope.custodian, scope.namespace),
    );
  },
});

export const DESTROY_OPERATIONS = [
  destroyManagedKey,
  cancelDestroy,
  destroyDueKeys,
  destructionReceipts,
] as const;
