import { type ErrorDetails, isKeyledgerError, KeyledgerError } from '../domain/errors.js';
import { httpStatusOf } from './httpStatus.js';

/** An RFC 9457 problem document as the API sends it (docs/api.md, "Errors"). */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails;
  readonly requestId: string;
}

export const PROBLEM_TYPE_BASE = 'https://keyledger.dev/errors/';

/**
 * Any failure as a problem. A KeyledgerError keeps its code, message and details (they never hold
 * secrets, src/domain/errors.ts); anything else is ERR_INTERNAL with no stack and no message, as
 * its text may name internals.
 */
export function problemOf(error: unknown, requestId: string): Problem {
  const known = isKeyledgerError(error)
    ? error
    : new KeyledgerError('ERR_INTERNAL', 'internal error', {}, { cause: error });
  return {
    type: `${PROBLEM_TYPE_BASE}${known.code}`,
    title: known.message,
    status: httpStatusOf(known.code),
    code: known.code,
    details: known.details,
    requestId,
  };
}
