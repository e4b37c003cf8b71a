import { ERROR_CODES, isKeyledgerError } from '../domain/errors.js';
import { type CliIo, escapeControl, toJson } from './output.js';

/**
 * Prints an error and returns the exit code: 2 for bad input or a rule's refusal (nothing written),
 * 1 for anything else. As text, one line `error CODE: message`; with --json, one JSON object
 * `{ code, message, details }` on one line. Unexpected errors print their class and message only: a
 * stack or an inspected object could carry more than it should.
 */
export function reportError(io: CliIo, error: unknown, json = false): number {
  let code: string;
  let message: string;
  let details: unknown = {};
  let exit: number;
  if (isKeyledgerError(error)) {
    code = error.code;
    message = error.message;
    details = error.details;
    exit = ERROR_CODES[error.code] === 'fault' ? 1 : 2;
  } else {
    const e = error instanceof Error ? error : new Error(String(error));
    code = 'ERR_INTERNAL';
    message = `${e.name}: ${e.message}`;
    exit = 1;
  }
  io.stderr(
    json
      ? `${toJson({ code, message, details }, 0)}\n`
      : `error ${code}: ${escapeControl(message).replaceAll('\n', '\\n')}\n`,
  );
  return exit;
}
