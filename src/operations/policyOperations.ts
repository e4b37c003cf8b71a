import { z } from 'zod';
import type { RotationPolicyTarget } from '../domain/decideRotationPolicy.js';
import { DUE_REASON } from '../ledger/dueRotations.js';
import { actedBy } from './adminOperations.js';
import { GRACE_PERIOD_FORMAT, parseGracePeriod } from './gracePeriod.js';
import { parseScopeArg } from './identityArgs.js';
import { defineOperation } from './operation.js';
import { plain } from './plain.js';
import { invalidArgument } from './queryOperations.js';

/** `@default`: every scope without a policy of its own; `@stk`: the system key. Never a scope (`@` is not base64). */
export const DEFAULT_TARGET = '@default';
export const SYSTEM_KEY_TARGET = '@stk';

const targetField = z
  .string()
  .min(1)
  .describe(
    'whose policy: a scope <custodian>[:<namespace>], @default (every scope without its own) or @stk (the system key)',
  );

export function parsePolicyTarget(text: string): RotationPolicyTarget {
  if (text === DEFAULT_TARGET) return { kind: 'default' };
  if (text === SYSTEM_KEY_TARGET) return { kind: 'system' };
  return { kind: 'scope', scope: parseScopeArg(text) };
}

const custodianOfTarget = (input: { target: string }) => {
  const target = parsePolicyTarget(input.target);
  return target.kind === 'scope' ? target.scope.custodian : null;
};

function duration(option: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  const ms = parseGracePeriod(text);
  if (ms === null || ms < 1000)
    throw invalidArgument(`--${option} must be ${GRACE_PERIOD_FORMAT}, at least 1s`);
  return ms;
}

export const setRotationPolicy = defineOperation({
  name: 'set-rotation-policy',
  summary: 'rotate a scope’s (or every scope’s, or the system key’s) key on a schedule',
  description:
    'Records RotationPolicySet. rotate-due-keys (and keyledger serve, when configured) rotates the ACTIVE\nkey once it has been ACTIVE for the period, and with --disable-inactive-after disables INACTIVE keys\nthat old. The same terms again write nothing.',
  input: z.strictObject({
    target: targetField,
    period: z.string().min(1).describe('rotate after the key has been ACTIVE this long: <n>s|m|h|d|w'),
    disableInactiveAfter: z
      .string()
      .min(1)
      .optional()
      .describe('disable INACTIVE keys after this long INACTIVE: <n>s|m|h|d|w (scopes and @default)'),
  }),
  permission: 'admin',
  custodianOf: custodianOfTarget,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['target'], placeholders: { period: 'duration', disableInactiveAfter: 'duration' } },
  prepare: (input) => ({
    target: parsePolicyTarget(input.target),
    periodMs: duration('period', input.period) ?? 0,
    disableInactiveAfterMs: duration('disable-inactive-after', input.disableInactiveAfter),
  }),
  async run({ target, periodMs, disableInactiveAfterMs }, host) {
    const ledger = await host.ledger();
    return plain(
      await ledger.rotationPolicies.set(target, { periodMs, disableInactiveAfterMs }, actedBy(host)),
    );
  },
});

export const clearRotationPolicy = defineOperation({
  name: 'clear-rotation-policy',
  summary: 'remove a scope’s (or the default, or the system key’s) rotation policy',
  input: z.strictObject({ target: targetField }),
  permission: 'admin',
  custodianOf: custodianOfTarget,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['target'] },
  prepare: (input) => parsePolicyTarget(input.target),
  async run(target, host) {
    return plain(await (await host.ledger()).rotationPolicies.clear(target, actedBy(host)));
  },
});

export const listRotationPolicies = defineOperation({
  name: 'list-rotation-policies',
  summary: 'every rotation policy in force, and who set it when',
  input: z.strictObject({}),
  permission: 'read',
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  prepare: () => null,
  async run(_p, host) {
    return plain(await (await host.ledger()).rotationPolicies.list());
  },
});

export const rotationPolicyHistory = defineOperation({
  name: 'rotation-policy-history',
  summary: 'every change of the rotation policies: who, when, why, from what to what',
  input: z.strictObject({ target: targetField.optional() }),
  permission: 'audit',
  custodianOf: (input) => (input.target === undefined ? null : custodianOfTarget({ target: input.target })),
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['target'] },
  prepare: (input) => (input.target === undefined ? undefined : parsePolicyTarget(input.target)),
  async run(target, host) {
    return plain(await (await host.ledger()).rotationPolicies.history(target));
  },
});

export const rotateDueKeys = defineOperation({
  name: 'rotate-due-keys',
  summary: 'do what the rotation policies say is due: rotate keys, disable old INACTIVE keys',
  description:
    'For cron: a re-run does nothing new, and two runs at once rotate each due scope once. A failing\nscope is reported and the others go on; it is tried again on the next run. Exit 1 when any failed.',
  input: z.strictObject({
    dryRun: z.boolean().optional().describe('list what is due; change nothing'),
  }),
  permission: 'operate',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  stoppable: true,
  prepare: (input) => ({ dryRun: input.dryRun === true }),
  async run({ dryRun }, host) {
    const ledger = await host.ledger();
    const run = await ledger.dueRotations.run({
      ...actedBy(host),
      reason: host.reason ?? DUE_REASON,
      dryRun,
      signal: host.signal,
      onProgress: (done, total) => host.progress({ task: 'rotate-due-keys', done, total }),
    });
    return plain(run);
  },
});

export const POLICY_OPERATIONS = [
  setRotationPolicy,
  clearRotationPolicy,
  listRotationPolicies,
  rotationPolicyHistory,
  rotateDueKeys,
] as const;
