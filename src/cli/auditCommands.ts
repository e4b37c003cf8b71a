import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { exportAudit } from '../audit/auditExport.js';
import { verifyAuditFile } from '../audit/verifyAuditFile.js';
import type { VerifyReport } from '../audit/verifyLedger.js';
import { verifyStore } from '../audit/verifyStore.js';
import { KeyledgerError } from '../domain/errors.js';
import { DEFAULT_PREFIX } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import { openEventStore } from '../store/storeUrl.js';
import { loadConfig, providerFor } from './config.js';
import { configPathOf, type GlobalOptions, openLedger, storeLocationOf } from './openLedger.js';
import { type CliIo, toJson } from './output.js';
import { parseCommandArgs, stringValue, usageError } from './parseCommandArgs.js';
import { reportError } from './reportError.js';

/** The commands this module runs; `keyledger <one of these> …` is handed to runAuditCli. */
export const AUDIT_COMMANDS: readonly string[] = ['verify', 'audit', 'checkpoint'];

/** Lines for the CLI's usage text (commands section). */
export const AUDIT_USAGE = `  verify [--file <export>] [--anchor <rev>:<hash>]
                                              check the hash chain and checkpoints of the ledger (or
                                              of an export file); exit 1 naming the first position
                                              changed, inserted, deleted, reordered or cut
  audit export [--out <file>]                 write the ledger as JSON lines (default: to stdout)
  checkpoint                                  commit to every stream's head now, MACed under the STK`;

const USAGE = `usage: keyledger verify [--file <export>] [--anchor <revision>:<hash>] [--json]
       keyledger audit export [--out <file>] [--json]
       keyledger checkpoint [--json]

${AUDIT_USAGE}

options: --store, --config, --json, --actor, --reason as for every command. verify --file checks
MACs with the system keys of the configured provider; without a config file it checks everything
else and says the MACs were not checked. --anchor: a checkpoint (revision and hash, from an earlier
verify) that must still be in the ledger.`;

/** The options these commands take (run.ts also uses them to find the command in argv). */
export const AUDIT_OPTIONS = {
  store: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  actor: { type: 'string' },
  reason: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  file: { type: 'string' },
  out: { type: 'string' },
  anchor: { type: 'string' },
} as const;

type Anchor = { readonly revision: bigint; readonly hash: string };

type Command =
  | { readonly kind: 'help' }
  | { readonly kind: 'verify'; readonly file: string | undefined; readonly anchor: Anchor | undefined }
  | { readonly kind: 'export'; readonly out: string | undefined }
  | { readonly kind: 'checkpoint' };

interface Parsed {
  readonly command: Command;
  readonly json: boolean;
  readonly global: GlobalOptions;
  readonly operation: { readonly actor?: string; readonly reason?: string };
}

const ANCHOR = /^(0|[1-9][0-9]{0,19}):([0-9a-f]{64})$/;

function parse(argv: readonly string[]): Parsed {
  const { values, positionals, common: base } = parseCommandArgs(argv, AUDIT_OPTIONS);
  if (values.help === true) return { ...base, command: { kind: 'help' } };
  const [name, ...args] = positionals;
  const refuse = (command: string, allowed: readonly string[]) => {
    const other = ['file', 'out', 'anchor'].find((o) => values[o] !== undefined && !allowed.includes(o));
    if (other !== undefined) throw usageError(`${command} does not take --${other}`);
  };
  switch (name) {
    case 'verify': {
      refuse('verify', ['file', 'anchor']);
      if (args.length > 0) throw usageError('verify takes no arguments (an export file is --file <path>)');
      const file = stringValue(values.file);
      if (file === '') throw usageError('--file takes a path');
      const anchorText = stringValue(values.anchor);
      let anchor: Anchor | undefined;
      if (anchorText !== undefined) {
        const match = ANCHOR.exec(anchorText);
        if (match === null)
          throw usageError('--anchor takes <revision>:<hash> (64 hex digits), as verify reports them');
        anchor = { revision: BigInt(match[1] ?? ''), hash: match[2] ?? '' };
      }
      return { ...base, command: { kind: 'verify', file, anchor } };
    }
    case 'audit': {
      refuse('audit export', ['out']);
      const [sub, extra] = args;
      if (sub !== 'export' || extra !== undefined) throw usageError('audit takes one subcommand: export');
      const out = stringValue(values.out);
      if (out === '') throw usageError('--out takes a path');
      return { ...base, command: { kind: 'export', out } };
    }
    case 'checkpoint':
      refuse('checkpoint', []);
      if (args.length > 0) throw usageError('checkpoint takes no arguments');
      return { ...base, command: { kind: 'checkpoint' } };
    default:
      throw usageError(`unknown command ${name ?? ''}; see keyledger --help`);
  }
}

/**
 * Runs `keyledger verify …`, `keyledger audit export …` or `keyledger checkpoint`; returns the exit
 * code: 0 success (verify: the ledger verified), 1 verify found tampering (ERR_LEDGER_TAMPERED) or
 * any other failure, 2 bad input. Never throws.
 */
export async function runAuditCli(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(argv);
  } catch (error) {
    return reportError(io, error);
  }
  if (parsed.command.kind === 'help') {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  try {
    await run(parsed, parsed.command, io);
    return 0;
  } catch (error) {
    return reportError(io, error);
  }
}

async function run(p: Parsed, command: Exclude<Command, { kind: 'help' }>, io: CliIo): Promise<void> {
  switch (command.kind) {
    case 'verify': {
      const report =
        command.file === undefined
          ? await verifyLedgerStore(p, command.anchor, io)
          : await verifyFile(p, command.file, command.anchor, io);
      io.stdout(p.json ? `${toJson(report)}\n` : reportText(report));
      if (report.macs === 'skipped') {
        io.stderr(
          'warning: checkpoint MACs were not checked (no provider configured): a writer could have rebuilt this file\n',
        );
      }
      const first = report.firstProblem;
      if (first !== null) {
        throw new KeyledgerError(
          'ERR_LEDGER_TAMPERED',
          `verification failed at position ${first.position} (${first.kind}, ${first.stream || 'the file'}${first.revision === null ? '' : `@${first.revision}`})`,
          { position: first.position.toString(), kind: first.kind, stream: first.stream },
        );
      }
      return;
    }
    case 'export':
      await exportLedger(p, command.out, io);
      return;
    case 'checkpoint': {
      const opened = await openLedger(p.global, io.cwd, io.env, io.stderr);
      try {
        const r = await opened.ledger.checkpoint(p.operation);
        if (p.json) io.stdout(`${toJson(r)}\n`);
        else if (r === null) io.stdout('nothing was written since the last checkpoint; none written\n');
        else
          io.stdout(
            `checkpoint #${r.revision} at position ${r.position}: ${r.streams} stream heads up to position ${r.coveredPosition}, MACed under system key ${r.stkIdentity}\n`,
          );
      } finally {
        await opened.close();
      }
      return;
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/**
 * verify on the store without opening a Ledger: a ledger whose events no longer parse (which a
 * Ledger refuses to open) is exactly the one whose damage must be located.
 */
async function verifyLedgerStore(p: Parsed, anchor: Anchor | undefined, io: CliIo): Promise<VerifyReport> {
  const config = loadConfig(configPathOf(p.global, io.cwd));
  const location = storeLocationOf(p.global, io.cwd, io.env, config);
  const store = openEventStore(location.url, location.baseDir);
  let provider: ManagedKeyProvider | null = null;
  try {
    provider = providerFor(config);
    return await verifyStore(store, {
      prefix: config.prefix ?? DEFAULT_PREFIX,
      provider,
      anchor,
      checkpointEvery: config.checkpointEvery,
      anchorFile: config.anchorFile,
    });
  } finally {
    await provider?.close();
    await store.close();
  }
}

/** An export file: MACs checked with the configured provider when there is a config file. */
async function verifyFile(
  p: Parsed,
  file: string,
  anchor: Anchor | undefined,
  io: CliIo,
): Promise<VerifyReport> {
  const configPath = configPathOf(p.global, io.cwd);
  // No config at the default place: an auditor without the keys still checks the rest.
  const config = p.global.config === undefined && !existsSync(configPath) ? null : loadConfig(configPath);
  const provider = config === null ? undefined : providerFor(config);
  try {
    return await verifyAuditFile(resolve(io.cwd, file), {
      provider,
      anchor,
      checkpointEvery: config?.checkpointEvery,
      anchorFile: config?.anchorFile,
    });
  } finally {
    await provider?.close();
  }
}

async function exportLedger(p: Parsed, out: string | undefined, io: CliIo): Promise<void> {
  const config = loadConfig(configPathOf(p.global, io.cwd));
  const location = storeLocationOf(p.global, io.cwd, io.env, config);
  const store = openEventStore(location.url, location.baseDir);
  try {
    const prefix = config.prefix ?? DEFAULT_PREFIX;
    if (out === undefined) {
      await exportAudit(store, prefix, io.stdoutStream ?? textWritable(io));
      return;
    }
    const path = resolve(io.cwd, out);
    const file = createWriteStream(path);
    try {
      await once(file, 'open');
    } catch (error) {
      throw new KeyledgerError('ERR_INVALID_ARGUMENT', `cannot write ${path}`, { path }, { cause: error });
    }
    let summary: Awaited<ReturnType<typeof exportAudit>>;
    try {
      summary = await exportAudit(store, prefix, file);
    } finally {
      file.end();
      await once(file, 'close');
    }
    io.stdout(
      p.json
        ? `${toJson({ ...summary, file: path })}\n`
        : `exported ${summary.events} events (up to position ${summary.headPosition}) to ${path}\n`,
    );
  } finally {
    await store.close();
  }
}

/** io.stdout as a stream, for a CliIo without a binary stdout (tests, the demo). */
function textWritable(io: CliIo): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      io.stdout(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      callback();
    },
  });
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function reportText(r: VerifyReport): string {
  const lines: string[] = [];
  const macs = r.macs === 'skipped' ? 'MACs not checked' : `${count(r.macsVerified, 'MAC')} verified`;
  const unavailable = r.macsUnavailable > 0 ? `, ${r.macsUnavailable} under retired system keys` : '';
  lines.push(
    `${r.ok ? 'verified' : 'TAMPERED'}: ${count(r.eventsChecked, 'event')} in ${count(r.streams, 'stream')}, ${count(r.checkpointsChecked, 'checkpoint')} (${macs}${unavailable})`,
  );
  if (r.coveredPosition === null) lines.push('no checkpoint covers the ledger yet: run keyledger checkpoint');
  else lines.push(`covered by checkpoints up to position ${r.coveredPosition}`);
  if (r.uncoveredEvents > 0) {
    lines.push(
      `${count(r.uncoveredEvents, 'event')} after the newest checkpoint: chained, not yet covered by one`,
    );
  }
  if (r.lastCheckpoint !== null) {
    lines.push(`newest checkpoint: --anchor ${r.lastCheckpoint.revision}:${r.lastCheckpoint.hash}`);
  }
  if (r.legacyEvents > 0)
    lines.push(`${r.legacyEvents} events predate the hash chain (covered by checkpoints only)`);
  if (r.destroyedStreams > 0)
    lines.push(`${r.destroyedStreams} material streams deleted by key destruction (receipts found)`);
  for (const problem of r.problems.slice(0, 10)) {
    const where = `${problem.stream || 'the file'}${problem.revision === null ? '' : `@${problem.revision}`}`;
    lines.push(`  ${problem.kind} at position ${problem.position} (${where}): ${problem.message}`);
  }
  if (r.problemCount > 10)
    lines.push(`  … ${r.problemCount - 10} more (--json lists the first ${r.problems.length})`);
  return `${lines.join('\n')}\n`;
}
