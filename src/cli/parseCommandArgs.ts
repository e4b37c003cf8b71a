import { parseArgs } from 'node:util';
import { KeyledgerError } from '../domain/errors.js';

/** A mistake in how a command was called: ERR_INVALID_ARGUMENT, so exit 2 like any bad input. */
export function usageError(message: string): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, {});
}

/** The positional arguments of a command that takes exactly `names`; a usage error otherwise. */
export function arity(
  p: { readonly command: string; readonly args: readonly string[] },
  names: readonly string[],
): string[] {
  if (p.args.length !== names.length) {
    throw usageError(`${p.command} takes ${names.map((n) => `<${n}>`).join(' ') || 'no arguments'}`);
  }
  return [...p.args];
}

/** Option declarations as node:util parseArgs takes them, limited to single-valued options. */
export type CommandOptions = Readonly<
  Record<string, { readonly type: 'string' | 'boolean'; readonly short?: string }>
>;

type OptionValue = string | boolean | undefined;

/** A string option's value; undefined when absent (a boolean option is never a string). */
export function stringValue(value: OptionValue): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export interface CommandArgs {
  readonly values: Readonly<Record<string, OptionValue>>;
  readonly positionals: readonly string[];
  /** The options every command takes (--json, --store, --config, --actor, --reason), read the same way. */
  readonly common: {
    readonly json: boolean;
    readonly global: { readonly store?: string; readonly config?: string; readonly actor?: string };
    readonly operation: { readonly actor?: string; readonly reason?: string };
  };
}

/**
 * Parses a command's argv strictly (an unknown option is refused, not ignored), turning parseArgs'
 * own errors into usage errors so they exit 2 with a stable code like every other bad input.
 */
export function parseCommandArgs(argv: readonly string[], options: CommandOptions): CommandArgs {
  let values: Record<string, OptionValue>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }));
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const str = stringValue;
  return {
    values,
    positionals,
    common: {
      json: values.json === true,
      global: { store: str(values.store), config: str(values.config), actor: str(values.actor) },
      operation: { actor: str(values.actor), reason: str(values.reason) },
    },
  };
}
