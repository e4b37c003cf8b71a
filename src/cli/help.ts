import {
  COMMANDS,
  type CommandSpec,
  GLOBAL_OPTIONS,
  type OptionSpec,
  usageLine,
  type Variant,
} from './commandLine.js';

/** Help texts, generated from the operation table: what a command takes is what its input declares. */

const NAMING = `custodian: base64 as HBase's shell writes it (dGVuYW50LTE=), * for the global custodian, or a plain
           name as name=tenant-1
scope:     <custodian>[:<namespace>], namespace default * (the first colon separates them)
key:       a key's metadata hash (43 base64url characters) or its key id (32 hex digits)`;

const EXIT_CODES =
  'exit codes: 0 success, 2 bad input or refused by a rule (nothing written), 1 any other failure';

function optionLines(options: readonly OptionSpec[]): string[] {
  const rows = options.map((o) => [
    o.type === 'boolean' ? `--${o.flag}` : `--${o.flag} <${o.placeholder}>`,
    o.description,
  ]);
  return columns(
    rows.map(([a, b]) => [
      a ?? '',
      `${b ?? ''}${options.find((o) => `--${o.flag}` === a?.split(' ')[0])?.multiple ? ' (repeatable)' : ''}`,
    ]),
  );
}

function columns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.min(34, Math.max(0, ...rows.map(([a]) => a.length)));
  return rows.map(([a, b]) =>
    a.length > width ? `  ${a}\n  ${' '.repeat(width)}  ${b}` : `  ${a.padEnd(width)}  ${b}`,
  );
}

/** `keyledger --help`: every command with its usage and summary. */
export function globalUsage(): string {
  const lines = [
    'usage: keyledger <command> [arguments] [options]',
    '       keyledger help <command>          a command’s own help (or keyledger <command> --help)',
    '       keyledger completion bash|zsh     a shell completion script',
    '       keyledger serve [--listen <host:port>] [--tls-cert <file>] [--tls-key <file>] [--client-ca <file>]',
    '                                         serve the operations over HTTPS (keyledger serve --help)',
    '',
    'commands:',
  ];
  for (const command of COMMANDS) {
    for (const variant of command.variants) {
      lines.push(`  ${usageLine(command, variant).slice('keyledger '.length)}`);
      lines.push(`      ${variant.operation.summary}`);
    }
  }
  lines.push('', NAMING, '', 'options every command takes:', ...optionLines(GLOBAL_OPTIONS), '', EXIT_CODES);
  return lines.join('\n');
}

function variantHelp(command: CommandSpec, variant: Variant): string[] {
  const op = variant.operation;
  const lines = [`  ${usageLine(command, variant)}`, '', `  ${op.summary}`];
  if (op.description !== undefined) lines.push(...op.description.split('\n').map((l) => `  ${l}`));
  if (variant.positionals.length > 0) {
    lines.push('', '  arguments:');
    lines.push(
      ...columns(variant.positionals.map((p) => [`<${p.placeholder}>`, p.description])).map((l) => `  ${l}`),
    );
  }
  const options = variant.selector === null ? variant.options : [variant.selector, ...variant.options];
  if (options.length > 0) lines.push('', '  options:', ...optionLines(options).map((l) => `  ${l}`));
  lines.push(
    '',
    `  operation ${op.name}: permission ${'aboutCaller' in op && op.aboutCaller === true ? 'none (any authenticated principal)' : op.permission}, ${op.writes ? 'writes to the ledger' : 'writes nothing'}`,
  );
  return lines;
}

/** `keyledger <command> --help`, `keyledger help <command>`. */
export function commandHelp(command: CommandSpec): string {
  const lines = [`usage: keyledger ${command.name} …`, ''];
  command.variants.forEach((variant, i) => {
    if (i > 0) lines.push('');
    lines.push(...variantHelp(command, variant));
  });
  lines.push('', 'options every command takes:', ...optionLines(GLOBAL_OPTIONS), '', NAMING, '', EXIT_CODES);
  return lines.join('\n');
}
