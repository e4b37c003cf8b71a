import { REWRAP_CAMPAIGN_ID } from '../domain/events.js';
import type { Ledger } from '../ledger/ledger.js';
import type { RewrapCampaignInfo, RewrapResult, RewrapStatus } from '../ledger/rewrapCampaign.js';
import { openLedger } from './openLedger.js';
import { type CliIo, table, toJson } from './output.js';
import { parseCommandArgs, stringValue, usageError } from './parseCommandArgs.js';
import { reportError } from './reportError.js';

/** The commands this module runs; `keyledger <one of these> …` is handed to runRewrapCli. */
export const REWRAP_COMMANDS: readonly string[] = ['rewrap', 'retire-stk'];

/** Lines for the CLI's usage text (commands section). */
export const REWRAP_USAGE = `  rewrap [--batch <n>] [--max-batches <n>]    re-wrap every key's material under the latest system key,
                                              recording progress; on a terminal, with a progress bar
  rewrap --resume <campaign-id>               continue an interrupted campaign after its checkpoint
  rewrap --status                             which system key each key is under, and every campaign
  retire-stk <identity>                       retire a system key no key is wrapped under any more`;

const USAGE = `usage: keyledger rewrap [--resume <campaign-id>] [--batch <n>] [--max-batches <n>] [--json]
       keyledger rewrap --status [--json]
       keyledger retire-stk <identity> [--json]

${REWRAP_USAGE}

options: --store, --config, --json, --actor, --reason as for every command; --batch <n> keys per
checkpoint (default 100); --max-batches <n> stop after n batches (resume later). Ctrl-C stops at the
next checkpoint; the campaign can be resumed.`;

/** The options these commands take (run.ts also uses them to find the command in argv). */
export const REWRAP_OPTIONS = {
  store: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  actor: { type: 'string' },
  reason: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  resume: { type: 'string' },
  batch: { type: 'string' },
  'max-batches': { type: 'string' },
  status: { type: 'boolean' },
} as const;

type Command =
  | { readonly kind: 'help' }
  | {
      readonly kind: 'rewrap';
      readonly resume: string | undefined;
      readonly batchSize: number | undefined;
      readonly maxBatches: number | undefined;
    }
  | { readonly kind: 'status' }
  | { readonly kind: 'retire'; readonly identity: string };

interface Parsed {
  readonly command: Command;
  readonly json: boolean;
  readonly global: { readonly store?: string; readonly config?: string; readonly actor?: string };
  readonly operation: { readonly actor?: string; readonly reason?: string };
}

function count(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min)
    throw usageError(`--${name} takes an integer ≥ ${min}`);
  return Number(value);
}

function parse(argv: readonly string[]): Parsed {
  const { values, positionals, common: base } = parseCommandArgs(argv, REWRAP_OPTIONS);
  const [name, ...args] = positionals;
  if (values.help === true) return { ...base, command: { kind: 'help' } };
  const rewrapOnly = ['resume', 'batch', 'max-batches', 'status'].filter((o) => values[o] !== undefined);
  if (name === 'retire-stk') {
    if (rewrapOnly.length > 0) throw usageError(`retire-stk does not take --${rewrapOnly[0]}`);
    const [identity, extra] = args;
    if (identity === undefined || extra !== undefined) throw usageError('retire-stk takes <identity>');
    return { ...base, command: { kind: 'retire', identity } };
  }
  if (name !== 'rewrap') throw usageError(`unknown command ${name ?? ''}; see keyledger --help`);
  if (args.length > 0) throw usageError('rewrap takes no arguments (a campaign to resume is --resume <id>)');
  if (values.status === true) {
    const other = rewrapOnly.find((o) => o !== 'status');
    if (other !== undefined) throw usageError(`rewrap --status does not take --${other}`);
    return { ...base, command: { kind: 'status' } };
  }
  const resume = stringValue(values.resume);
  if (resume !== undefined && !REWRAP_CAMPAIGN_ID.test(resume)) {
    throw usageError('--resume takes a campaign id (a lowercase UUID, as rewrap printed it)');
  }
  return {
    ...base,
    command: {
      kind: 'rewrap',
      resume,
      batchSize: count(stringValue(values.batch), 'batch', 1),
      maxBatches: count(stringValue(values['max-batches']), 'max-batches', 1),
    },
  };
}

/**
 * Runs `keyledger rewrap …` or `keyledger retire-stk …`; returns the exit code (0 success, 2 bad
 * input or refused by a rule, 1 any other failure). Never throws.
 */
export async function runRewrapCli(argv: readonly string[], io: CliIo): Promise<number> {
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
    // Arguments are validated above: bad input never opens the store.
    const opened = await openLedger(parsed.global, io.cwd, io.env, io.stderr);
    try {
      await run(parsed, parsed.command, opened.ledger, io);
    } finally {
      await opened.close();
    }
    return 0;
  } catch (error) {
    return reportError(io, error);
  }
}

async function run(p: Parsed, command: Exclude<Command, { kind: 'help' }>, ledger: Ledger, io: CliIo) {
  const out = (text: string) => io.stdout(text);
  switch (command.kind) {
    case 'retire': {
      const r = await ledger.rewrap.retireSystemKey(command.identity, p.operation);
      out(p.json ? `${toJson(r)}\n` : `system key #${r.sequence} (${r.identity}) retired\n`);
      return;
    }
    case 'status': {
      const status = await ledger.rewrap.status();
      out(p.json ? `${toJson(status)}\n` : statusText(status));
      return;
    }
    case 'rewrap': {
      const progress = p.json ? null : new ProgressView(io);
      const abort = new AbortController();
      const onSigint = () => {
        abort.abort();
        io.stderr('\nstopping at the next checkpoint (Ctrl-C again to quit at once)\n');
      };
      process.once('SIGINT', onSigint);
      const options = {
        ...p.operation,
        batchSize: command.batchSize,
        maxBatches: command.maxBatches,
        signal: abort.signal,
        onProgress: (c: RewrapCampaignInfo) => progress?.update(c),
      };
      let result: RewrapResult;
      try {
        result =
          command.resume === undefined
            ? await ledger.rewrap.start(options)
            : await ledger.rewrap.resume(command.resume, options);
      } catch (error) {
        progress?.end();
        await hintResume(ledger, io);
        throw error;
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
      progress?.end();
      out(p.json ? `${toJson(result)}\n` : resultText(result, ledger));
      return;
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/** After a failure: which campaign to resume, if one is open. */
async function hintResume(ledger: Ledger, io: CliIo): Promise<void> {
  try {
    const open = (await ledger.rewrap.status()).open;
    if (open !== null) {
      io.stderr(
        `rewrap campaign ${open.campaignId} stopped after ${open.done} of ${open.keys} keys; resume with keyledger rewrap --resume ${open.campaignId}\n`,
      );
    }
  } catch {
    // The original error is what matters.
  }
}

const BAR_WIDTH = 30;

/** A progress bar redrawn in place on a terminal; one plain line per checkpoint otherwise. */
class ProgressView {
  readonly #io: CliIo;
  #drawn = false;

  constructor(io: CliIo) {
    this.#io = io;
  }

  update(c: RewrapCampaignInfo): void {
    const total = Math.max(c.keys, c.done);
    const fraction = total === 0 ? 1 : c.done / total;
    const percent = Math.floor(fraction * 100);
    if (this.#io.isTty) {
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
      this.#io.stdout(`\r\x1b[2Krewrap [${bar}] ${String(percent).padStart(3)}% ${c.done}/${total} keys`);
      this.#drawn = true;
    } else {
      this.#io.stdout(
        `rewrap ${c.campaignId}: ${c.done}/${total} keys (${percent}%), ${c.rewrapped} re-wrapped, ${c.skipped} skipped\n`,
      );
    }
  }

  end(): void {
    if (this.#drawn) this.#io.stdout('\n');
    this.#drawn = false;
  }
}

function resultText(r: RewrapResult, ledger: Ledger): string {
  const latest = ledger.systemKeys().at(-1);
  const stk = latest === undefined ? '' : `system key #${latest.sequence} (${latest.identity})`;
  const c = r.campaign;
  if (r.status === 'up-to-date' || c === null) return `every key is already under ${stk}; nothing to do\n`;
  if (r.status === 'paused') {
    return `rewrap campaign ${c.campaignId} paused after ${c.done} of ${c.keys} keys; resume with keyledger rewrap --resume ${c.campaignId}\n`;
  }
  const lines = [
    `rewrap campaign ${c.campaignId} finished: ${c.rewrapped} keys re-wrapped, ${c.skipped} skipped, under ${stk}`,
  ];
  if (r.remaining > 0) {
    lines.push(
      `${r.remaining} keys were written under an older system key meanwhile; run keyledger rewrap again`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function statusText(s: RewrapStatus): string {
  const keys = table(
    ['SEQ', 'SYSTEM KEY', 'CURRENT', 'RETIRED', 'KEYS'],
    s.systemKeys.map((k) => [
      `#${k.sequence}`,
      k.identity,
      k.current ? 'yes' : '',
      k.retiredAt ?? '',
      String(k.keys),
    ]),
  );
  const campaigns = table(
    ['CAMPAIGN', 'TARGET', 'PASS', 'PROGRESS', 'STATE', 'UPDATED'],
    s.campaigns.map((c) => [
      c.campaignId,
      c.targetStkIdentity,
      String(c.pass),
      `${c.done}/${c.keys}`,
      c.finished ? 'finished' : 'unfinished',
      c.updatedAt,
    ]),
  );
  return `${keys}\n${s.pending} keys under an older system key\n\n${campaigns}`;
}
