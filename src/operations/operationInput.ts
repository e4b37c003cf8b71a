import { KeyledgerError } from '../domain/errors.js';
import type { AnyOperation } from './operations.js';

/**
 * An operation's input as it arrives from outside the CLI (a library call, a request body): checked
 * by the operation's schema, then prepared (identities, dates, durations) with the ledger's own
 * codes. Bad input is refused here, before anything is opened or written. A schema failure is
 * ERR_INVALID_ARGUMENT with each offending field and what is wrong with it (the shape the server
 * answers too); the values given are not echoed, they may be long or secret.
 */
export function prepareInput(operation: AnyOperation, input: unknown): unknown {
  const parsed = operation.input.safeParse(input ?? {});
  if (!parsed.success) {
    const details: Record<string, string> = {};
    for (const issue of parsed.error.issues.slice(0, 20)) {
      const field = issue.path.length === 0 ? '(input)' : issue.path.map(String).join('.');
      details[field] = issue.message.slice(0, 200);
    }
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      'the input does not match the operation’s schema',
      details,
    );
  }
  return (operation.prepare as (input: unknown) => unknown)(parsed.data);
}
