import { type ErrorDetailsOf, KeyledgerError } from '../../domain/errors.js';

/** Malformed or unsupported content. Name the unsupported OID in `details.oid` so the user can tell which. */
export function keystoreFormatError(
  message: string,
  details: ErrorDetailsOf<'ERR_KEYSTORE_FORMAT'> = {},
  cause?: unknown,
): KeyledgerError {
  return new KeyledgerError(
    'ERR_KEYSTORE_FORMAT',
    message,
    details,
    cause === undefined ? undefined : { cause },
  );
}

export function keystorePasswordError(
  message: string,
  details: ErrorDetailsOf<'ERR_KEYSTORE_PASSWORD'> = {},
): KeyledgerError {
  return new KeyledgerError('ERR_KEYSTORE_PASSWORD', message, details);
}
