import { KeyledgerError } from '../domain/errors.js';

/** The most characters a reason holds (what an event's `reason` takes). */
export const MAX_REASON_CHARS = 1024;

/**
 * A reason as the `Keyledger-Reason` header carries it. An HTTP header holds printable ASCII only, so
 * every other character, and `%` itself, is sent as percent-encoded UTF-8 (`é` → `%C3%A9`): any
 * reason the CLI records locally can be sent to a server.
 */
export function encodeReasonHeader(reason: string): string {
  checkReasonLength(reason, 'reason');
  if (!reason.isWellFormed()) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'a reason must be well-formed Unicode', {
      reason: reason.length,
    });
  }
  return reason.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/**
 * The reason a `Keyledger-Reason` header carries: runs of `%XX` are decoded as UTF-8 (a `%` not
 * followed by two hex digits is kept as is, so a hand-written `100% done` still reads right).
 * A run that is not UTF-8 is ERR_INVALID_ARGUMENT.
 */
export function decodeReasonHeader(header: string): string {
  const reason = header.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'Keyledger-Reason holds percent-escapes that are not UTF-8',
        {
          'Keyledger-Reason': header.length,
        },
      );
    }
  });
  checkReasonLength(reason, 'Keyledger-Reason');
  return reason;
}

export function checkReasonLength(reason: string, name: string): void {
  if (reason.length > MAX_REASON_CHARS) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `${name} takes at most ${MAX_REASON_CHARS} characters`, {
      [name]: reason.length,
    });
  }
}
