import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import { type AnyOperation, OPERATIONS } from '../operations/operations.js';

/**
 * The command line, derived from the operation table: every command, its options and positional
 * arguments come from an operation's declaration (its input schema and its `cli` shape). Nothing
 * here names a command.
 */

/** A mistake in how a command was called: ERR_INVALID_ARGUMENT, so exit 2 like any bad input. */
export function usageError(message: string): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, {});
}

export interface OptionSpec {
  /** As typed: `--max-batches`. */
  readonly flag: string;
  /** The input field it fills (`maxBatches`); null for a flag that only picks a variant. */
  readonly field: string | null;
  readonly type: 'string' | 'boolean';
  readonly multiple: boolean;
  readonly integer: boolean;
  readonly description: string;
  readonly placeholder: string;
}

export interface PositionalSpec {
  readonly field: string;
  readonly placeholder: string;
  readonly required: boolean;
  /** An array field, as the last positional: it takes every argument left. */
  readonly multiple: boolean;
  readonly description: string;
}

/** One operation as a command line: `rewrap --status` is one, `rewrap` another. */
export interface Variant {
  readonly operation: AnyOperation;
  /** The option that picks this variant (null: the command's default). */
  readonly selector: OptionSpec | null;
  readonly positionals: readonly PositionalSpec[];
  /** Its options, the selector excluded. */
  readonly options: readonly OptionSpec[];
  /** The option whose file the CLI reads into an array field, one item a line (CliShape.linesFrom). */
  readonly linesFrom: { readonly option: OptionSpec; readonly field: string } | null;
}

export interface CommandSpec {
  /** `rotate-managed-key`, `audit export`. */
  readonly name: string;
  readonly words: readonly string[];
  /** The default variant first. */
  readonly variants: readonly Variant[];
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  globalOption(
    'store',
    'url',
    'sqlite:<path> (default sqlite:.keyledger/ledger.db), memory:, esdb://host:port or esdb+discover://host:port; env KEYLEDGER_STORE',
  ),
  globalOption('config', 'file', 'config file (default ./keyledger.config.json)'),
  {
    ...globalOption('json', '', 'machine-readable output (errors too: one JSON object on stderr)'),
    type: 'boolean',
  },
  globalOption('actor', 'name', 'who is acting (default: env KEYLEDGER_ACTOR, else the OS user)'),
  globalOption('reason', 'text', 'why; recorded with the events'),
  globalOption(
    'server',
    'url',
    'run the command on a keyledger server (https://host:port) instead of locally; env KEYLEDGER_SERVER',
  ),
  globalOption(
    'token-file',
    'file',
    'a file holding the bearer token for --server; env KEYLEDGER_TOKEN_FILE',
  ),
  globalOption(
    'ca-file',
    'file',
    'PEM CA of the server’s certificate, for a private CA; env KEYLEDGER_CA_FILE',
  ),
  { ...globalOption('help', '', 'this command’s help'), type: 'boolean' },
];

function globalOption(flag: string, placeholder: string, description: string): OptionSpec {
  return { flag, field: flag, type: 'string', multiple: false, integer: false, description, placeholder };
}

const kebab = (field: string) => field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

interface JsonSchemaProperty {
  readonly type?: string;
  readonly description?: string;
  readonly items?: JsonSchemaProperty;
}

function variantOf(operation: AnyOperation): Variant {
  const schema = z.toJSONSchema(operation.input, { io: 'input' }) as {
    properties?: Record<string, JsonSchemaProperty>;
    required?: string[];
  };
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const cli = operation.cli ?? {};
  const placeholderOf = (field: string) => cli.placeholders?.[field] ?? kebab(field);
  const positionalFields = cli.positionals ?? [];
  const positionals = positionalFields.map((field, i) => {
    if (properties[field] === undefined)
      throw new TypeError(`${operation.name}: positional ${field} is not an input field`);
    const multiple = properties[field]?.type === 'array';
    if (multiple && i !== positionalFields.length - 1)
      throw new TypeError(`${operation.name}: only the last positional may take several arguments`);
    return {
      field,
      placeholder: placeholderOf(field),
      required: required.has(field),
      multiple,
      description: properties[field]?.description ?? '',
    };
  });
  const options: OptionSpec[] = [];
  let selector: OptionSpec | null = null;
  for (const [field, property] of Object.entries(properties)) {
    if (positionalFields.includes(field)) continue;
    const multiple = property.type === 'array';
    const type = property.type === 'boolean' ? 'boolean' : 'string';
    const spec: OptionSpec = {
      flag: kebab(field),
      field,
      type,
      multiple,
      integer: property.type === 'integer',
      description: property.description ?? '',
      placeholder: type === 'boolean' ? '' : placeholderOf(field),
    };
    if (cli.selectedBy === field) selector = spec;
    else options.push(spec);
  }
  if (cli.selectedBy !== undefined && selector === null) {
    // A flag of the command alone: `rewrap --status`.
    selector = {
      flag: kebab(cli.selectedBy),
      field: null,
      type: 'boolean',
      multiple: false,
      integer: false,
      description: operation.summary,
      placeholder: '',
    };
  }
  let linesFrom: Variant['linesFrom'] = null;
  if (cli.linesFrom !== undefined) {
    if (properties[cli.linesFrom.field]?.type !== 'array')
      throw new TypeError(
        `${operation.name}: --${cli.linesFrom.flag} fills ${cli.linesFrom.field}, not an array`,
      );
    const option: OptionSpec = {
      flag: cli.linesFrom.flag,
      field: null,
      type: 'string',
      multiple: false,
      integer: false,
      description: `a file of ${kebab(cli.linesFrom.field)}, one a line (blank lines and lines starting with # are skipped); - for stdin`,
      placeholder: 'file',
    };
    options.push(option);
    linesFrom = { option, field: cli.linesFrom.field };
  }
  return { operation, selector, positionals, options, linesFrom };
}

function buildCommands(): CommandSpec[] {
  const byName = new Map<string, Variant[]>();
  for (const operation of OPERATIONS) {
    const name = operation.cli?.command ?? operation.name;
    const variants = byName.get(name) ?? [];
    variants.push(variantOf(operation));
    byName.set(name, variants);
  }
  return [...byName].map(([name, variants]) => {
    const defaults = variants.filter((v) => v.selector === null);
    if (defaults.length > 1) throw new TypeError(`command ${name} has ${defaults.length} default operations`);
    return {
      name,
      words: name.split(' '),
      variants: [...defaults, ...variants.filter((v) => v.selector !== null)],
    };
  });
}

export const COMMANDS: readonly CommandSpec[] = buildCommands();

/** Commands of the CLI itself, not operations. */
export const BUILTIN_COMMANDS = ['help', 'completion', 'serve'] as const;

/**
 * `keyledger serve`'s own options: they override the config's `server` section. The command is the
 * CLI's, not an operation (it serves the operations), so it is parsed by the one parser with these.
 */
export const SERVE_OPTIONS: readonly OptionSpec[] = [
  serveOption(
    'listen',
    'host:port',
    'listen address (default: server.listen, else 127.0.0.1:8443; port 0: any)',
  ),
  serveOption('tls-cert', 'file', 'PEM certificate (chain) of the server (server.tls.cert)'),
  serveOption('tls-key', 'file', 'PEM private key of the server (server.tls.key)'),
  serveOption(
    'client-ca',
    'file',
    'PEM CA whose client certificates authenticate, mTLS (server.tls.clientCa)',
  ),
];

function serveOption(flag: string, placeholder: string, description: string): OptionSpec {
  return { flag, field: null, type: 'string', multiple: false, integer: false, description, placeholder };
}

/** Every option any command takes, by flag (one declaration per flag: a flag means one thing). */
export const EVERY_OPTION: ReadonlyMap<string, OptionSpec> = (() => {
  const all = new Map<string, OptionSpec>();
  const add = (spec: OptionSpec, where: string) => {
    const known = all.get(spec.flag);
    if (known !== undefined && (known.type !== spec.type || known.multiple !== spec.multiple)) {
      throw new TypeError(`--${spec.flag} of ${where} is declared differently elsewhere`);
    }
    if (known === undefined) all.set(spec.flag, spec);
  };
  for (const spec of GLOBAL_OPTIONS) add(spec, 'every command');
  for (const spec of SERVE_OPTIONS) add(spec, 'serve');
  for (const command of COMMANDS) {
    for (const variant of command.variants) {
      for (const spec of variant.options) add(spec, command.name);
      if (variant.selector !== null) add(variant.selector, command.name);
    }
  }
  return all;
})();

export function commandNamed(words: readonly string[]): CommandSpec | undefined {
  // The longest match: `audit export` before a one-word command.
  return [...COMMANDS]
    .sort((a, b) => b.words.length - a.words.length)
    .find((c) => c.words.every((w, i) => words[i] === w));
}

/** The usage line of one variant: `keyledger history <scope> [--key <key>]`. */
export function usageLine(command: CommandSpec, variant: Variant): string {
  const parts = [`keyledger ${command.name}`];
  for (const p of variant.positionals) {
    const text = p.required ? `<${p.placeholder}>` : `[<${p.placeholder}>]`;
    parts.push(p.multiple ? `${text}...` : text);
  }
  if (variant.selector !== null) parts.push(optionUsage(variant.selector, true));
  for (const o of variant.options) parts.push(optionUsage(o, false));
  return parts.join(' ');
}

export function optionUsage(o: OptionSpec, required: boolean): string {
  const text = o.type === 'boolean' ? `--${o.flag}` : `--${o.flag} <${o.placeholder}>`;
  if (required) return text;
  return o.multiple ? `[${text}]...` : `[${text}]`;
}
