import { ERROR_CODES, isKeyledgerError } from '../domain/errors.js';
import type { CliIo } from './output.js';

/**
 * Prints an error as `error CODE: message` and returns the exit code: 2 for bad input or a rule's
 * refusal (nothing written), 1 for anything else. Unexpected errors print their class and message
 * only: a stack or an inspected object could carry more than it should.
 */
export function reportError(io: CliIo, error: unknown): number {
  if (isKeyledgerError(error)) {
    io.stderr(`error ${error.code}: ${error.message}\n`);
    return ERROR_CODES[error.code] === 'fault' ? 1 : 2;
  }
  const e = error instanceof Error ? error : new Error(String(error));
  io.stderr(`error ERR_INTERNAL: ${e.name}: ${e.message}\n`);
  return 1;
}
