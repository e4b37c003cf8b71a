/**
 * Every failure the ledger reports is a KeyledgerError with a stable `code`. Callers (and tests)
 * branch on the code, never on message text. `category` decides the CLI exit code at the edge:
 * `input` and `rule` failures change nothing and exit 2; `fault` failures exit 1.
 */
export type ErrorCategory = 'input' | 'rule' | 'fault';

export const ERROR_CODES = {
  ERR_INVALID_CUSTODIAN: 'input',
  ERR_INVALID_NAMESPACE: 'input',
  ERR_INVALID_METADATA: 'input',
  ERR_INVALID_ARGUMENT: 'input',
  ERR_INVALID_CONFIG: 'input',
  ERR_INVALID_STORE_URL: 'input',
  ERR_KEY_NOT_FOUND: 'rule',
  ERR_KEY_ALREADY_DISABLED: 'rule',
  ERR_KEY_NOT_DISABLED: 'rule',
  ERR_KEY_DISABLED: 'rule',
  ERR_KEY_MANAGEMENT_NOT_ENABLED: 'rule',
  ERR_KEY_MANAGEMENT_DISABLED: 'rule',
  ERR_LEDGER_NOT_INITIALISED: 'rule',
  ERR_LEDGER_ALREADY_INITIALISED: 'rule',
  ERR_INVALID_TRANSITION: 'rule',
  ERR_SYSTEM_KEY_IN_USE: 'rule',
  ERR_SYSTEM_KEY_CURRENT: 'rule',
  ERR_SYSTEM_KEY_RETIRED: 'rule',
  ERR_SYSTEM_KEY_ALREADY_RETIRED: 'rule',
  ERR_REWRAP_IN_PROGRESS: 'rule',
  ERR_REWRAP_NOT_FOUND: 'rule',
  ERR_REWRAP_FINISHED: 'rule',
  ERR_REWRAP_TARGET_CHANGED: 'rule',
  // Audit queries (src/audit): as-of (ERR_SCOPE_NOT_FOUND, shared, is below).
  ERR_INVALID_AS_OF: 'input',
  ERR_AS_OF_IN_FUTURE: 'input',
  ERR_AS_OF_BEFORE_LEDGER: 'input',
  // Crypto-shredding (decideDestroy.ts).
  ERR_KEY_ACTIVE: 'rule',
  ERR_KEY_DESTROYED: 'rule',
  ERR_KEY_DESTRUCTION_SCHEDULED: 'rule',
  ERR_KEY_DESTRUCTION_NOT_SCHEDULED: 'rule',
  ERR_SCOPE_NOT_FOUND: 'rule',
  // Tamper evidence (src/audit): an export file that is not one.
  ERR_AUDIT_FILE_INVALID: 'input',
  ERR_PROVIDER_NO_KEY: 'fault',
  ERR_PROVIDER_KEY_NOT_ACTIVE: 'fault',
  ERR_PROVIDER_WRONG_SCOPE: 'fault',
  ERR_PROVIDER_INVALID_ANSWER: 'fault',
  ERR_PROVIDER_FAILED: 'fault',
  ERR_REFRESH_INCOMPLETE: 'fault',
  ERR_NO_ACTIVE_KEY: 'fault',
  ERR_DECRYPTION_FAILED: 'fault',
  ERR_KEYSTORE_NOT_FOUND: 'fault',
  ERR_KEYSTORE_PASSWORD: 'fault',
  ERR_KEYSTORE_FORMAT: 'fault',
  ERR_KEYSTORE_ALIAS_NOT_FOUND: 'fault',
  ERR_KEY_UNWRAP_FAILED: 'fault',
  ERR_SYSTEM_KEY_NOT_FOUND: 'fault',
  ERR_VERSION_CONFLICT: 'fault',
  ERR_EVENT_SCHEMA: 'fault',
  ERR_STORE: 'fault',
  ERR_STORE_CLOSED: 'fault',
  // verify found the ledger (or an export of it) changed: the report names the first position.
  ERR_LEDGER_TAMPERED: 'fault',
  // The store's server could not be reached (refused, no leader, timed out) within the retry budget.
  ERR_STORE_UNAVAILABLE: 'fault',
  // Tamper evidence (src/audit/anchorFile.ts): the rollback anchor file cannot be read or written,
  // or holds a line that is not an anchor. details: { file }.
  ERR_ANCHOR_FILE: 'fault',
} as const satisfies Record<string, ErrorCategory>;

export type ErrorCode = keyof typeof ERROR_CODES;

export type ErrorDetails = Readonly<Record<string, string | number | boolean | null | undefined>>;

export class KeyledgerError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyledgerError';
    this.code = code;
    this.details = details;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isKeyledgerError(error: unknown, code?: ErrorCode): error is KeyledgerError {
  return error instanceof KeyledgerError && (code === undefined || error.code === code);
}

/** A write lost an optimistic-concurrency race; the ledger re-decides on it. */
export class VersionConflictError extends KeyledgerError {
  constructor(stream: string, expected: string, actual: string, options?: { cause?: unknown }) {
    super(
      'ERR_VERSION_CONFLICT',
      `stream ${stream} is at revision ${actual}, expected ${expected}`,
      { stream, expected, actual },
      options,
    );
    this.name = 'VersionConflictError';
  }
}

/** A stored event does not parse: the projection stops here rather than fold a guess. */
export class EventSchemaError extends KeyledgerError {
  constructor(
    stream: string,
    revision: bigint,
    type: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      'ERR_EVENT_SCHEMA',
      `stored event ${type} at ${stream}@${revision} fails its schema: ${problem}`,
      { stream, revision: revision.toString(), type },
      options,
    );
    this.name = 'EventSchemaError';
  }
}
