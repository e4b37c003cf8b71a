import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { z } from 'zod';
import { isKeyId, isMetadataHash } from '../domain/identities.js';
import type { AnyOperation } from '../operations/operations.js';
import {
  type CommandSpec,
  commandNamed,
  EVERY_OPTION,
  GLOBAL_OPTIONS,
  type OptionSpec,
  SERVE_OPTIONS,
  usageError,
  usageLine,
  type Variant,
} from './commandLine.js';

/** What the command line asks for. */
export type Invocation =
  | { readonly kind: 'usage'; readonly exit: 0 | 2 }
  | { readonly kind: 'help'; readonly command: CommandSpec }
  | { readonly kind: 'completion'; readonly shell: string }
  | {
      readonly kind: 'serve';
      readonly serve: ServeFlags;
      readonly global: GlobalValues;
      /** `serve --help`. */
      readonly help: boolean;
    }
  | {
      readonly kind: 'run';
      readonly command: CommandSpec;
      readonly operation: AnyOperation;
      /** The operation's input, checked against its schema (not yet prepared). */
      readonly input: Record<string, unknown>;
      readonly global: GlobalValues;
    };

export interface GlobalValues {
  readonly json: boolean;
  readonly store: string | undefined;
  readonly config: string | undefined;
  readonly actor: string | undefined;
  readonly reason: string | undefined;
  /** --server: run the operation on this keyledger server (env KEYLEDGER_SERVER). */
  readonly server: string | undefined;
  /** --token-file: the bearer token for --server (env KEYLEDGER_TOKEN_FILE). */
  readonly tokenFile: string | undefined;
  /** --ca-file: the CA of the server's certificate, for a private CA (env KEYLEDGER_CA_FILE). */
  readonly caFile: string | undefined;
}

/** `keyledger serve`'s flags (each overrides its config key). */
export interface ServeFlags {
  readonly listen: string | undefined;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly clientCa: string | undefined;
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

const PARSE_OPTIONS: ParseArgsConfig['options'] = Object.fromEntries(
  [...EVERY_OPTION.values()].map((o) => [
    o.flag,
    { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.flag === 'help' ? { short: 'h' } : {}) },
  ]),
);

/** Whether --json was asked for, read leniently: to report a usage error in the form asked for. */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * An option no command knows, named cleanly (Node's own message quotes unevenly and suggests `--`,
 * which is rarely what was meant).
 */
function refuseUnknownOptions(argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--') return;
    if (token.startsWith('--')) {
      const flag = token.slice(2).split('=')[0] ?? '';
      // The value of a string option is not an option, whatever it looks like (parseArgs judges it).
      if (EVERY_OPTION.get(flag)?.type === 'string' && !token.includes('=')) i++;
      if (!EVERY_OPTION.has(flag)) {
        const command = commandNamed(argv.filter((t) => !t.startsWith('-')));
        const help = command === undefined ? 'keyledger --help' : `keyledger ${command.name} --help`;
        throw usageError(`unknown option --${flag.slice(0, 64)}; see ${help}`);
      }
    } else if (token.startsWith('-') && token !== '-' && token !== '-h') {
      throw usageError(`unknown option ${token.slice(0, 64)}; see keyledger --help`);
    }
  }
}

/**
 * A metadata hash is base64url, so one in four starts with `-`; a key id may too. Such a token is a
 * key reference, never an option (keyledger has no short option but -h): it is passed through
 * parseArgs under a stand-in and given back as the positional or option value it was.
 */
function shieldKeyReferences(argv: readonly string[]): {
  args: string[];
  restore: (token: string) => string;
} {
  const shielded = new Map<string, string>();
  const end = argv.indexOf('--');
  const args = argv.map((token, i) => {
    if ((end !== -1 && i > end) || !token.startsWith('-') || !(isMetadataHash(token) || isKeyId(token)))
      return token;
    const standIn = `\u0000key-reference-${shielded.size}`;
    shielded.set(standIn, token);
    return standIn;
  });
  return { args, restore: (token) => shielded.get(token) ?? token };
}

function parse(argv: readonly string[]): { values: Values; positionals: string[] } {
  const { args, restore } = shieldKeyReferences(argv);
  refuseUnknownOptions(args);
  try {
    const { values, positionals } = parseArgs({
      args,
      options: PARSE_OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    const restored = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [
        k,
        typeof v === 'string'
          ? restore(v)
          : Array.isArray(v)
            ? v.map((x) => (typeof x === 'string' ? restore(x) : x))
            : v,
      ]),
    );
    return { values: restored as Values, positionals: positionals.map(restore) };
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = (error as Error).message;
    const flag = /'(--?[a-z-]+)/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag !== undefined) {
      const spec = EVERY_OPTION.get(flag.replace(/^-+/, ''));
      throw usageError(
        spec?.type === 'boolean'
          ? `${flag} takes no value`
          : `${flag} takes a value (one that starts with - is written ${flag}=<value>)`,
      );
    }
    throw usageError(message.replaceAll("'", ''));
  }
}

const GLOBAL_FLAGS = new Set(GLOBAL_OPTIONS.map((o) => o.flag));

function given(values: Values, o: OptionSpec): boolean {
  return values[o.flag] !== undefined;
}

function selectVariant(command: CommandSpec, values: Values): Variant {
  const selected = command.variants.filter((v) => v.selector !== null && given(values, v.selector));
  const [first, second] = selected;
  if (first !== undefined && second !== undefined) {
    throw usageError(`${command.name} takes one of --${first.selector?.flag} and --${second.selector?.flag}`);
  }
  const variant = first ?? command.variants.find((v) => v.selector === null);
  if (variant === undefined) {
    const flags = command.variants.map((v) => `--${v.selector?.flag}`).join(' or ');
    throw usageError(`${command.name} takes ${flags}; see keyledger ${command.name} --help`);
  }
  return variant;
}

function checkOptions(command: CommandSpec, variant: Variant, values: Values): void {
  const taken = new Set(variant.options.map((o) => o.flag));
  if (variant.selector !== null) taken.add(variant.selector.flag);
  for (const [flag, value] of Object.entries(values)) {
    if (value === undefined || GLOBAL_FLAGS.has(flag) || taken.has(flag)) continue;
    const name = variant.selector === null ? command.name : `${command.name} --${variant.selector.flag}`;
    throw usageError(`${name} does not take --${flag}; see keyledger ${command.name} --help`);
  }
}

function inputOf(command: CommandSpec, variant: Variant, values: Values, args: readonly string[]) {
  const required = variant.positionals.filter((p) => p.required).length;
  const variadic = variant.positionals.at(-1)?.multiple === true;
  if (args.length < required || (!variadic && args.length > variant.positionals.length)) {
    const takes = variant.positionals.map((p) =>
      p.required ? `<${p.placeholder}>` : `[<${p.placeholder}>]`,
    );
    throw usageError(
      `${command.name} takes ${takes.join(' ') || 'no arguments'}; usage: ${usageLine(command, variant)}`,
    );
  }
  const input: Record<string, unknown> = {};
  variant.positionals.forEach((p, i) => {
    if (p.multiple) {
      if (args.length > i) input[p.field] = args.slice(i);
    } else if (args[i] !== undefined) input[p.field] = args[i];
  });
  const file = variant.linesFrom === null ? undefined : values[variant.linesFrom.option.flag];
  if (variant.linesFrom !== null && typeof file === 'string') {
    const { field } = variant.linesFrom;
    const before = Array.isArray(input[field]) ? (input[field] as string[]) : [];
    input[field] = [...before, ...readLines(file, variant.linesFrom.option.flag)];
  }
  for (const o of [...variant.options, ...(variant.selector === null ? [] : [variant.selector])]) {
    const value = values[o.flag];
    if (value === undefined || o.field === null) continue;
    input[o.field] =
      o.integer && typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value;
  }
  const parsed = variant.operation.input.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? '');
    const option = [...variant.options, variant.selector].find((o) => o?.field === field);
    const positional = variant.positionals.find((p) => p.field === field);
    const where = option ? `--${option.flag}` : positional ? `<${positional.placeholder}>` : field;
    const message = issue?.message ?? z.prettifyError(parsed.error);
    throw usageError(
      message.startsWith('--')
        ? message
        : `${where}: ${option?.integer ? 'takes a whole number' : message}; see keyledger ${command.name} --help`,
    );
  }
  return parsed.data as Record<string, unknown>;
}

/** Reads argv into what to do; a usage error (ERR_INVALID_ARGUMENT) before anything is opened. */
export function parseCommandLine(argv: readonly string[]): Invocation {
  const { values, positionals } = parse(argv);
  if (positionals.length === 0) return { kind: 'usage', exit: values.help === true ? 0 : 2 };
  const [first, ...rest] = positionals;
  if (first === 'help') {
    if (rest.length === 0) return { kind: 'usage', exit: 0 };
    if (rest.length === 1 && rest[0] === 'serve') return serveInvocation({ help: true }, []);
    const command = commandNamed(rest);
    if (command === undefined)
      throw usageError(`no command ${rest.join(' ').slice(0, 64)}; see keyledger --help`);
    return { kind: 'help', command };
  }
  if (first === 'completion') {
    const [shell, extra] = rest;
    if (shell === undefined || extra !== undefined) throw usageError('completion takes bash or zsh');
    return { kind: 'completion', shell };
  }
  if (first === 'serve') return serveInvocation(values, rest);
  const command = commandNamed(positionals);
  if (command === undefined) {
    throw usageError(`unknown command ${String(first).slice(0, 64)}; see keyledger --help`);
  }
  if (values.help === true) return { kind: 'help', command };
  const variant = selectVariant(command, values);
  checkOptions(command, variant, values);
  const input = inputOf(command, variant, values, positionals.slice(command.words.length));
  return { kind: 'run', command, operation: variant.operation, input, global: globalValues(values) };
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

function globalValues(values: Values): GlobalValues {
  return {
    json: values.json === true,
    store: str(values.store),
    config: str(values.config),
    actor: str(values.actor),
    reason: str(values.reason),
    server: str(values.server),
    tokenFile: str(values['token-file']),
    caFile: str(values['ca-file']),
  };
}

const SERVE_FLAGS = new Set(SERVE_OPTIONS.map((o) => o.flag));

/** `keyledger serve [--listen …] [--tls-cert …] [--tls-key …] [--client-ca …]`. */
function serveInvocation(values: Values, rest: readonly string[]): Invocation {
  if (rest.length > 0) throw usageError('serve takes no arguments; see keyledger serve --help');
  for (const [flag, value] of Object.entries(values)) {
    if (value === undefined || SERVE_FLAGS.has(flag)) continue;
    if (flag === 'server' || flag === 'token-file' || flag === 'ca-file') {
      throw usageError(`serve does not take --${flag}: it serves the local ledger`);
    }
    if (flag === 'actor' || flag === 'reason') {
      throw usageError(
        `serve does not take --${flag}: every event records the request's principal and reason`,
      );
    }
    if (!GLOBAL_FLAGS.has(flag))
      throw usageError(`serve does not take --${flag}; see keyledger serve --help`);
  }
  return {
    kind: 'serve',
    serve: {
      listen: str(values.listen),
      tlsCert: str(values['tls-cert']),
      tlsKey: str(values['tls-key']),
      clientCa: str(values['client-ca']),
    },
    global: globalValues(values),
    help: values.help === true,
  };
}

/**
 * The items of a --file: one a line, surrounding blanks trimmed, blank lines and lines starting
 * with # skipped (CRLF too). Each is then checked by the input schema like an argument.
 */
function readLines(file: string, flag: string): string[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw usageError(
      `--${flag} ${file.slice(0, 200)}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
