import { type ParseArgsConfig, parseArgs } from 'node:util';

/**
 * The command an argv names: its first positional, wherever the options stand. `options` must hold
 * every option of every command that takes a value, or the value of one (as in `--at 5 history`)
 * would be taken for the command.
 */
export function commandOf(argv: readonly string[], options: ParseArgsConfig['options']): string | undefined {
  try {
    const { positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: false });
    return positionals[0];
  } catch {
    return undefined;
  }
}
