import { ERROR_CODES, type ErrorCategory, type ErrorCode } from '../domain/errors.js';

const NOT_FOUND: readonly ErrorCode[] = [
  'ERR_KEY_NOT_FOUND',
  'ERR_SCOPE_NOT_FOUND',
  'ERR_REWRAP_NOT_FOUND',
  'ERR_NOT_FOUND',
];

/** The HTTP status of an error code (the table of the wire protocol, docs/api.md "Errors"). */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'ERR_UNAUTHENTICATED':
      return 401;
    case 'ERR_FORBIDDEN':
      return 403;
    case 'ERR_DECRYPTION_FAILED':
      return 400;
    case 'ERR_PAYLOAD_TOO_LARGE':
      return 413;
    case 'ERR_REQUEST_TIMEOUT':
      return 408;
    case 'ERR_RATE_LIMITED':
      return 429;
    case 'ERR_SERVER_BUSY':
    case 'ERR_STORE_UNAVAILABLE':
    case 'ERR_KEY_CACHE_THRASHING':
      return 503;
    // The scope's state, not the server, stops it (its keys are disabled or it was never enabled):
    // the caller can act on it, as on a refusal by the ledger's rules.
    case 'ERR_NO_ACTIVE_KEY':
      return 409;
    default:
      break;
  }
  if (NOT_FOUND.includes(code)) return 404;
  const category = ERROR_CODES[code] as ErrorCategory;
  switch (category) {
    case 'input':
      return 400;
    case 'rule':
      return 409;
    case 'denied':
      return 403;
    case 'fault':
      return 500;
    default: {
      const unreachable: never = category;
      return unreachable;
    }
  }
}
