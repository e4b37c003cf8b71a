import { z } from 'zod';
import { REWRAP_CAMPAIGN_ID } from '../domain/rewrapEventSchemas.js';
import type { Ledger } from '../ledger/ledger.js';
import type { RewrapResult } from '../ledger/rewrapCampaignInfo.js';
import type { RewrapOptions } from '../ledger/rewrapOptions.js';
import { actedBy } from './adminOperations.js';
import { defineOperation, type OperationHost } from './operation.js';
import { plain } from './plain.js';
import { invalidArgument } from './queryOperations.js';

const batchField = z
  .int()
  .min(1, '--batch takes an integer ≥ 1')
  .describe('keys per checkpoint (default 100)');
const maxBatchesField = z
  .int()
  .min(1, '--max-batches takes an integer ≥ 1')
  .describe('stop after this many batches; resume later');

function rewrapOptions(
  host: OperationHost,
  input: { readonly batch?: number | undefined; readonly maxBatches?: number | undefined },
): RewrapOptions {
  return {
    ...actedBy(host),
    batchSize: input.batch,
    maxBatches: input.maxBatches,
    signal: host.signal,
    onProgress: (c) => host.progress(c),
  };
}

/** The result with the system key the keys are now under (what a reader of the result wants to know). */
function resultOut(ledger: Ledger, r: RewrapResult) {
  const latest = ledger.systemKeys().at(-1);
  return plain({
    ...r,
    systemKey: latest === undefined ? null : { sequence: latest.sequence, identity: latest.identity },
  });
}

export const rewrapStart = defineOperation({
  name: 'rewrap-start',
  summary: 're-wrap every key’s material under the latest system key, recording progress',
  description: 'Ctrl-C stops at the next checkpoint; the campaign can be resumed (rewrap --resume).',
  input: z.strictObject({ batch: batchField.optional(), maxBatches: maxBatchesField.optional() }),
  permission: 'operate',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  stoppable: true,
  cli: { command: 'rewrap', placeholders: { batch: 'n', maxBatches: 'n' } },
  prepare: (input) => input,
  async run(input, host) {
    const ledger = await host.ledger();
    return resultOut(ledger, await ledger.rewrap.start(rewrapOptions(host, input)));
  },
});

export const rewrapResume = defineOperation({
  name: 'rewrap-resume',
  summary: 'continue an interrupted rewrap campaign after its checkpoint',
  input: z.strictObject({
    resume: z.string().describe('the campaign id, as rewrap printed it'),
    batch: batchField.optional(),
    maxBatches: maxBatchesField.optional(),
  }),
  permission: 'operate',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  stoppable: true,
  cli: {
    command: 'rewrap',
    selectedBy: 'resume',
    placeholders: { resume: 'campaign-id', batch: 'n', maxBatches: 'n' },
  },
  prepare: (input) => {
    if (!REWRAP_CAMPAIGN_ID.test(input.resume)) {
      throw invalidArgument('--resume takes a campaign id (a lowercase UUID, as rewrap printed it)');
    }
    return input;
  },
  async run(input, host) {
    const ledger = await host.ledger();
    return resultOut(ledger, await ledger.rewrap.resume(input.resume, rewrapOptions(host, input)));
  },
});

export const rewrapStatus = defineOperation({
  name: 'rewrap-status',
  summary: 'which system key each key is under, and every rewrap campaign',
  input: z.strictObject({}),
  permission: 'read',
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { command: 'rewrap', selectedBy: 'status' },
  prepare: () => null,
  async run(_p, host) {
    return plain(await (await host.ledger()).rewrap.status());
  },
});

export const retireStk = defineOperation({
  name: 'retire-stk',
  summary: 'retire a system key no key is wrapped under any more',
  input: z.strictObject({
    identity: z.string().min(1).describe('the system key’s identity (16 hex digits)'),
  }),
  permission: 'admin',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['identity'] },
  prepare: (input) => input.identity,
  async run(identity, host) {
    return plain(await (await host.ledger()).rewrap.retireSystemKey(identity, actedBy(host)));
  },
});

export const destroyStk = defineOperation({
  name: 'destroy-stk',
  summary: 'delete a retired system key from the HSM that holds it',
  description:
    'Only a retired system key (retire-stk), and only with a provider that makes its own system keys\n(pkcs11): its key objects are destroyed in the token, then SystemKeyDestroyed is recorded (who,\nwhy, which key). Run again after a failure between the two, it records what is left to record.',
  input: z.strictObject({
    identity: z.string().min(1).describe('the system key’s identity (16 hex digits)'),
  }),
  permission: 'admin',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['identity'] },
  prepare: (input) => input.identity,
  async run(identity, host) {
    return plain(await (await host.ledger()).rewrap.destroyRetiredSystemKey(identity, actedBy(host)));
  },
});

export const REWRAP_OPERATIONS = [rewrapStart, rewrapResume, rewrapStatus, retireStk, destroyStk] as const;
