import { ERRORS, type ErrorCode, KeyledgerError } from '../domain/errors.js';

/**
 * An RFC 9457 problem (docs/api.md, "Errors") back as the KeyledgerError the server threw: same
 * code, title as message, same details, so a caller branches on the code as it would in process.
 * A code this client does not know (a newer server) is ERR_INTERNAL, its title kept.
 */
export function problemError(status: number, problem: unknown): KeyledgerError {
  const body = (typeof problem === 'object' && problem !== null ? problem : {}) as Record<string, unknown>;
  const title = typeof body.title === 'string' ? body.title : `the server answered HTTP ${status}`;
  const code = typeof body.code === 'string' ? body.code : undefined;
  if (code === undefined || !Object.hasOwn(ERRORS, code)) {
    const named = code === undefined ? '' : ` (${code.slice(0, 64)})`;
    return new KeyledgerError('ERR_INTERNAL', `${title}${named}`, {});
  }
  const details = typeof body.details === 'object' && body.details !== null ? body.details : {};
  return new KeyledgerError(code as ErrorCode, title, details as never);
}

/** The server could not be reached or gave no usable answer. Never names the token. */
export function serverUnavailable(url: string, reason: string, cause?: unknown): KeyledgerError {
  return new KeyledgerError(
    'ERR_SERVER_UNAVAILABLE',
    `cannot reach the keyledger server at ${url} (${reason})`,
    { url, reason },
    cause === undefined ? undefined : { cause },
  );
}
