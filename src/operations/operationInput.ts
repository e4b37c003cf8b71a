import { KeyledgerError } from '../domain/errors.js';
import type { Operation } from './operation.js';

/** An input checked by its operation's schema and prepared by the operation. */
export interface ParsedInput<P = unknown> {
  readonly input: Record<string, unknown>;
  readonly prepared: P;
}

/**
 * An operation's input as it arrives from outside the CLI (a library call, a request body): checked
 * by the operation's schema, then prepared (identities, dates, durations) with the ledger's own
 * codes. Bad input is refused here, before anything is opened or written. A schema failure is
 * ERR_INVALID_ARGUMENT with each offending field and what is wrong with it (what the server answers
 * as 400); the values given are not echoed, they may be long or secret.
 */
export function parseInput<P>(operation: Operation<string, never, P>, raw: unknown): ParsedInput<P> {
  const parsed = operation.input.safeParse(raw ?? {});
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
  const input = parsed.data as Record<string, unknown>;
  return { input, prepared: (operation.prepare as (input: unknown) => P)(input) };
}

/** The prepared input alone (the in-process API). */
export function prepareInput(operation: Operation<string, never>, input: unknown): unknown {
  return parseInput(operation, input).prepared;
}
