import { KeyledgerError } from '../domain/errors.js';
import type { AnyOperation } from './operations.js';

/**
 * An operation's input as it arrives from outside the CLI (a library call, a request body): checked
 * by the operation's schema, then prepared (identities, dates, durations) with the ledger's own
 * codes. Bad input is refused here, before anything is opened or written. A schema failure is
 * ERR_INVALID_ARGUMENT naming the field (its value is not echoed: it may be long or sensitive).
 */
export function prepareInput(operation: AnyOperation, input: unknown): unknown {
  const parsed = operation.input.safeParse(input ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') || '(input)';
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      `${operation.name}: ${field}: ${issue?.message ?? 'invalid input'}`,
      { field },
    );
  }
  return (operation.prepare as (input: unknown) => unknown)(parsed.data);
}
