import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { z } from 'zod';
import { exportAudit } from '../audit/auditExport.js';
import { verifyAuditFile } from '../audit/verifyAuditFile.js';
import { verifyStore } from '../audit/verifyStore.js';
import { KeyledgerError } from '../domain/errors.js';
import { actedBy } from './adminOperations.js';
import { defineOperation, type OperationHost } from './operation.js';
import { plain } from './plain.js';
import { invalidArgument } from './queryOperations.js';

const ANCHOR = /^(0|[1-9][0-9]{0,19}):([0-9a-f]{64})$/;

const anchorField = z
  .string()
  .describe('a checkpoint that must still be in the ledger: <revision>:<hash>, as verify reports the newest')
  .optional();

function parseAnchor(text: string | undefined) {
  if (text === undefined) return undefined;
  const match = ANCHOR.exec(text);
  if (match === null)
    throw invalidArgument('--anchor takes <revision>:<hash> (64 hex digits), as verify reports them');
  return { revision: BigInt(match[1] ?? ''), hash: match[2] ?? '' };
}

function localFiles(host: OperationHost) {
  if (host.local === null)
    throw invalidArgument('this operation reads or writes local files; run it with the CLI');
  return host.local;
}

export const checkpoint = defineOperation({
  name: 'checkpoint',
  summary: 'commit to every stream’s head now, MACed under the system key',
  input: z.strictObject({}),
  permission: 'operate',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'ledger',
  prepare: () => null,
  async run(_p, host) {
    return plain(await (await host.ledger()).checkpoint(actedBy(host)));
  },
});

export const verify = defineOperation({
  name: 'verify',
  summary: 'check the hash chain and checkpoints; report the first position changed',
  description:
    'Reads the store without replaying it, so it also works on a ledger whose events no longer parse.\nThe report says ok: false and names the first problem when the ledger was tampered with.',
  input: z.strictObject({ anchor: anchorField }),
  permission: 'audit',
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  opens: 'store',
  cli: { placeholders: { anchor: 'revision>:<hash' } },
  prepare: (input) => ({ anchor: parseAnchor(input.anchor) }),
  async run({ anchor }, host) {
    const access = await host.store();
    return plain(
      await verifyStore(access.store, {
        prefix: access.prefix,
        provider: access.provider(),
        anchor,
        checkpointEvery: access.checkpointEvery,
        anchorFile: access.anchorFile,
      }),
    );
  },
});

export const verifyExport = defineOperation({
  name: 'verify-export',
  summary: 'check an audit export file offline, with the same checks',
  description:
    'MACs are checked with the configured provider; without a config file (at the default place) the\nrest is checked and the report says macs: skipped.',
  input: z.strictObject({
    file: z.string().min(1, '--file takes a path').describe('the export file to check'),
    anchor: anchorField,
  }),
  permission: 'audit',
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  opens: 'nothing',
  cli: { command: 'verify', selectedBy: 'file', placeholders: { file: 'export', anchor: 'revision>:<hash' } },
  prepare: (input) => ({ file: input.file, anchor: parseAnchor(input.anchor) }),
  async run({ file, anchor }, host) {
    const local = localFiles(host);
    const verifier = await local.fileVerifier();
    try {
      return plain(
        await verifyAuditFile(local.resolvePath(file), {
          provider: verifier?.provider,
          anchor,
          checkpointEvery: verifier?.checkpointEvery,
          anchorFile: verifier?.anchorFile,
        }),
      );
    } finally {
      await verifier?.provider.close();
    }
  },
});

export const auditExport = defineOperation({
  name: 'audit-export',
  summary: 'the ledger as JSON lines, streamed',
  input: z.strictObject({}),
  permission: 'audit',
  custodianOf: () => null,
  writes: false,
  kind: 'bytes',
  opens: 'store',
  cli: { command: 'audit export' },
  prepare: () => null,
  async run(_p, host, streams) {
    if (streams === undefined) throw new TypeError('audit-export streams its output');
    const { store, prefix } = await host.store();
    return plain(await exportAudit(store, prefix, streams.output));
  },
});

export const auditExportFile = defineOperation({
  name: 'audit-export-file',
  summary: 'write the ledger as JSON lines to a file',
  input: z.strictObject({ out: z.string().min(1, '--out takes a path').describe('the file to write') }),
  permission: 'audit',
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  opens: 'store',
  cli: { command: 'audit export', selectedBy: 'out', placeholders: { out: 'file' } },
  prepare: (input) => input.out,
  async run(out, host) {
    const path = localFiles(host).resolvePath(out);
    const { store, prefix } = await host.store();
    const file = createWriteStream(path);
    try {
      await once(file, 'open');
    } catch (error) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', `cannot write ${path}`, { path }, { cause: error });
    }
    try {
      return plain({ ...(await exportAudit(store, prefix, file)), file: path });
    } finally {
      file.end();
      await once(file, 'close');
    }
  },
});

export const AUDIT_OPERATIONS = [checkpoint, verify, verifyExport, auditExport, auditExportFile] as const;
