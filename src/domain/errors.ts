import { z } from 'zod';

/**
 * Every failure the ledger reports is a KeyledgerError with a stable `code`. Callers (and tests)
 * branch on the code, never on message text. `category` decides the CLI exit code at the edge:
 * `input`, `rule` and `denied` (the service refused the caller) failures change nothing and exit 2;
 * `fault` failures exit 1.
 */
export type ErrorCategory = 'input' | 'rule' | 'denied' | 'fault';

const str = z.string();
const int = z.number().int();
/** A scope as the CLI writes it: `<custodian-b64>:<namespace>` (formatScope). */
const scope = z.string();
const metadataHash = z.string();
const identity = z.string();
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const none = z.strictObject({});

/**
 * Every error code: its category and the one shape of its `details`, a zod schema the HTTP API
 * publishes (z.toJSONSchema). A field is optional where the code's causes differ in what they
 * can name (e.g. a key by metadata hash, or by key id when only that is known). Details are plain
 * JSON scalars: never key bytes, never a password.
 */
export const ERRORS = {
  ERR_INVALID_CUSTODIAN: {
    category: 'input',
    // The text given, or (for bytes from elsewhere) the decoded length.
    details: z.strictObject({ custodian: str.optional(), bytes: int.optional() }),
  },
  ERR_INVALID_NAMESPACE: { category: 'input', details: z.strictObject({ bytes: int.optional() }) },
  ERR_INVALID_METADATA: { category: 'input', details: z.strictObject({ metadataHash: str.optional() }) },
  ERR_INVALID_ARGUMENT: {
    category: 'input',
    // The offending arguments by their option or parameter name, with the values given.
    details: z.record(z.string(), scalar),
  },
  ERR_INVALID_CONFIG: {
    category: 'input',
    details: z.strictObject({
      file: str.optional(),
      /** A file's mode in octal (`0644`), when the mode is what is wrong. */
      mode: str.optional(),
      prefix: str.optional(),
      property: str.optional(),
      scope: scope.optional(),
    }),
  },
  ERR_INVALID_STORE_URL: {
    category: 'input',
    details: z.strictObject({ scheme: str.optional(), url: str.optional(), kind: str.optional() }),
  },
  ERR_KEY_NOT_FOUND: {
    category: 'rule',
    details: z.strictObject({ scope, metadataHash: metadataHash.optional(), keyId: str.optional() }),
  },
  ERR_KEY_ALREADY_DISABLED: {
    category: 'rule',
    details: z.strictObject({ scope, metadataHash, state: str }),
  },
  ERR_KEY_NOT_DISABLED: { category: 'rule', details: z.strictObject({ scope, metadataHash, state: str }) },
  ERR_KEY_DISABLED: { category: 'rule', details: z.strictObject({ scope, metadataHash, state: str }) },
  ERR_KEY_MANAGEMENT_NOT_ENABLED: {
    category: 'rule',
    details: z.strictObject({ scope, marker: str.nullable() }),
  },
  ERR_KEY_MANAGEMENT_DISABLED: { category: 'rule', details: z.strictObject({ scope }) },
  ERR_LEDGER_NOT_INITIALISED: { category: 'rule', details: none },
  ERR_LEDGER_ALREADY_INITIALISED: {
    category: 'rule',
    details: z.strictObject({ config: str.optional(), keystore: str.optional(), sequence: int.optional() }),
  },
  ERR_INVALID_TRANSITION: {
    category: 'rule',
    // A key's state change (keyId, from, to), a rewrap campaign's (campaignId, remaining), or a
    // legacy re-encryption's checkpoint out of order (campaign, batches recorded, batch given).
    details: z.strictObject({
      keyId: str.optional(),
      from: str.optional(),
      to: str.optional(),
      campaignId: str.optional(),
      remaining: int.optional(),
      campaign: str.optional(),
      batches: int.optional(),
      batch: int.optional(),
    }),
  },
  ERR_SYSTEM_KEY_IN_USE: {
    category: 'rule',
    details: z.strictObject({ identity, keys: int, sequence: int.optional(), campaignId: str.optional() }),
  },
  ERR_SYSTEM_KEY_CURRENT: { category: 'rule', details: z.strictObject({ identity, sequence: int }) },
  ERR_SYSTEM_KEY_RETIRED: {
    category: 'rule',
    details: z.strictObject({ identity, metadataHash: metadataHash.optional() }),
  },
  ERR_SYSTEM_KEY_ALREADY_RETIRED: { category: 'rule', details: z.strictObject({ identity, sequence: int }) },
  /** destroy-stk of a system key the ledger has not retired (it may still be needed to unwrap). */
  ERR_SYSTEM_KEY_NOT_RETIRED: { category: 'rule', details: z.strictObject({ identity, sequence: int }) },
  ERR_REWRAP_IN_PROGRESS: {
    category: 'rule',
    details: z.strictObject({ campaignId: str, targetStkIdentity: identity }),
  },
  ERR_REWRAP_NOT_FOUND: { category: 'rule', details: z.strictObject({ campaignId: str }) },
  ERR_REWRAP_FINISHED: { category: 'rule', details: z.strictObject({ campaignId: str }) },
  ERR_REWRAP_TARGET_CHANGED: {
    category: 'rule',
    details: z.strictObject({ campaignId: str, targetStkIdentity: identity }),
  },
  // Audit queries (src/audit): as-of (ERR_SCOPE_NOT_FOUND, shared, is below).
  ERR_INVALID_AS_OF: { category: 'input', details: z.strictObject({ at: str.optional() }) },
  ERR_AS_OF_IN_FUTURE: { category: 'input', details: z.strictObject({ at: str }) },
  ERR_AS_OF_BEFORE_LEDGER: { category: 'input', details: z.strictObject({ at: str }) },
  // Crypto-shredding (decideDestroy.ts).
  ERR_KEY_ACTIVE: { category: 'rule', details: z.strictObject({ scope, metadataHash }) },
  ERR_KEY_DESTROYED: { category: 'rule', details: z.strictObject({ scope, metadataHash }) },
  ERR_KEY_DESTRUCTION_SCHEDULED: {
    category: 'rule',
    details: z.strictObject({ scope, metadataHash, dueAt: str }),
  },
  ERR_KEY_DESTRUCTION_NOT_SCHEDULED: {
    category: 'rule',
    details: z.strictObject({ scope, metadataHash, state: str }),
  },
  ERR_SCOPE_NOT_FOUND: { category: 'rule', details: z.strictObject({ scope }) },
  // Tamper evidence (src/audit): an export file that is not one.
  ERR_AUDIT_FILE_INVALID: { category: 'input', details: z.strictObject({ path: str, line: int.optional() }) },
  ERR_PROVIDER_NO_KEY: {
    category: 'fault',
    details: z.strictObject({ scope, metadataHash: metadataHash.optional() }),
  },
  ERR_PROVIDER_KEY_NOT_ACTIVE: { category: 'fault', details: z.strictObject({ scope, providerState: str }) },
  ERR_PROVIDER_WRONG_SCOPE: {
    category: 'fault',
    details: z.strictObject({ scope, alias: str.optional(), answeredScope: scope.optional() }),
  },
  ERR_PROVIDER_INVALID_ANSWER: {
    category: 'fault',
    // What the answer was about: a scope's key, a system key (alias, or sequence and identities).
    details: z.strictObject({
      scope: scope.optional(),
      metadataHash: metadataHash.optional(),
      keyId: str.optional(),
      alias: str.optional(),
      bits: int.optional(),
      sequence: int.optional(),
      recordedIdentity: identity.optional(),
      providerIdentity: identity.optional(),
    }),
  },
  ERR_PROVIDER_FAILED: {
    category: 'fault',
    details: z.strictObject({ scope: scope.optional(), metadataHash: metadataHash.optional() }),
  },
  ERR_REFRESH_INCOMPLETE: {
    category: 'fault',
    details: z.strictObject({ scope, failedKeys: int, firstCode: str, position: str.nullable() }),
  },
  ERR_NO_ACTIVE_KEY: {
    category: 'fault',
    details: z.strictObject({ custodian: str, namespace: str.optional() }),
  },
  // The ACTIVE key was found but kept leaving L1 (other lookups evicting it) before it could be
  // used: the scope is fine, the cache is too small for the working set; retryable.
  ERR_KEY_CACHE_THRASHING: { category: 'fault', details: z.strictObject({ custodian: str }) },
  ERR_DECRYPTION_FAILED: { category: 'fault', details: none },
  ERR_KEYSTORE_NOT_FOUND: { category: 'fault', details: z.strictObject({ path: str }) },
  ERR_KEYSTORE_PASSWORD: {
    category: 'fault',
    details: z.strictObject({ env: str.optional(), file: str.optional(), alias: str.optional() }),
  },
  ERR_KEYSTORE_FORMAT: {
    category: 'fault',
    // The unsupported algorithm's OID, the entry, or the parameter that is out of range.
    details: z.strictObject({
      oid: str.optional(),
      alias: str.optional(),
      version: int.optional(),
      iterations: int.optional(),
      salt: int.optional(),
      prf: str.optional(),
      cipher: str.optional(),
      iv: int.optional(),
      /** Which of the reader's bounds the file broke (src/providers/keystore/keystoreLimits.ts). */
      limit: z.enum(['fileBytes', 'entries', 'iterations', 'oidBytes', 'oidArcBytes', 'nesting']).optional(),
    }),
  },
  ERR_KEYSTORE_ALIAS_NOT_FOUND: { category: 'fault', details: z.strictObject({ path: str, alias: str }) },
  /** The PKCS#11 module (library) path is missing or does not load as a PKCS#11 module. */
  ERR_PKCS11_MODULE: { category: 'fault', details: z.strictObject({ module: str }) },
  /** No token with the configured label in any slot of the module. */
  ERR_PKCS11_TOKEN_NOT_FOUND: { category: 'fault', details: z.strictObject({ tokenLabel: str }) },
  /** The PIN is refused by the token, locked, or its source (variable or file) gives none. Never the PIN. */
  ERR_PKCS11_PIN: {
    category: 'fault',
    details: z.strictObject({
      tokenLabel: str,
      pinEnv: str.optional(),
      pinFile: str.optional(),
      reason: z.enum(['incorrect', 'locked', 'missing']),
    }),
  },
  /** A Cryptoki call did not return within the configured deadline (pkcs11.callTimeoutMs). */
  ERR_PKCS11_TIMEOUT: {
    category: 'fault',
    details: z.strictObject({ tokenLabel: str, operation: str, ms: int }),
  },
  /** No key object with this label (the STK, or its MAC key) in the token. */
  ERR_PKCS11_KEY_NOT_FOUND: { category: 'fault', details: z.strictObject({ tokenLabel: str, label: str }) },
  /** A key object that does not allow what the ledger needs of it (e.g. CKA_ENCRYPT false). */
  ERR_PKCS11_KEY_NOT_PERMITTED: {
    category: 'fault',
    details: z.strictObject({ tokenLabel: str, label: str, attribute: str }),
  },
  /**
   * The token or module failed mid-operation (device removed, session invalid, other CKR_*): the
   * sessions are dropped and the next call opens new ones. `rv` is the CKR_ name.
   */
  ERR_PKCS11_DEVICE: {
    category: 'fault',
    details: z.strictObject({ tokenLabel: str, operation: str, rv: str }),
  },
  ERR_KEY_UNWRAP_FAILED: {
    category: 'fault',
    details: z.strictObject({ metadataHash, stkIdentity: identity }),
  },
  ERR_SYSTEM_KEY_NOT_FOUND: {
    category: 'fault',
    // The recorded key (identity, sequence), or the two ends of a rewrap (from, to).
    details: z.strictObject({
      identity: identity.optional(),
      sequence: int.optional(),
      from: identity.optional(),
      to: identity.optional(),
    }),
  },
  // Metadata names a key the provider does not serve as a system key (not a configured STK alias).
  ERR_SYSTEM_KEY_NOT_CONFIGURED: { category: 'fault', details: z.strictObject({ alias: str }) },
  ERR_VERSION_CONFLICT: {
    category: 'fault',
    details: z.strictObject({ stream: str, expected: str, actual: str }),
  },
  ERR_EVENT_SCHEMA: {
    category: 'fault',
    details: z.strictObject({ stream: str, revision: str, type: str.optional() }),
  },
  ERR_STORE: {
    category: 'fault',
    details: z.strictObject({
      operation: str.optional(),
      reason: str.optional(),
      url: str.optional(),
      stream: str.optional(),
      revision: str.optional(),
      eventId: str.optional(),
      journalMode: str.optional(),
      schemaVersion: int.optional(),
      supportedVersion: int.optional(),
    }),
  },
  ERR_STORE_CLOSED: { category: 'fault', details: none },
  // verify found the ledger (or an export of it) changed: the report names the first position.
  ERR_LEDGER_TAMPERED: {
    category: 'fault',
    details: z.strictObject({
      position: str,
      stream: str.optional(),
      revision: str.optional(),
      kind: str.optional(),
    }),
  },
  // The store's server could not be reached (refused, no leader, timed out) within the retry budget.
  ERR_STORE_UNAVAILABLE: {
    category: 'fault',
    details: z.strictObject({ operation: str, url: str, waitedMs: int }),
  },
  // Tamper evidence (src/audit/anchorFile.ts): the rollback anchor file cannot be read or written,
  // or holds a line that is not an anchor.
  ERR_ANCHOR_FILE: { category: 'fault', details: z.strictObject({ file: str }) },
  // The remote client (src/client): the server could not be reached or answered no result (refused,
  // timed out, TLS not trusted, a stream cut before its result). `reason`: an OS/TLS code or a fixed word.
  ERR_SERVER_UNAVAILABLE: {
    category: 'fault',
    details: z.strictObject({ url: str, reason: str.optional() }),
  },
  // The service (src/server): a request its grants do not allow (403); names the permission missing.
  ERR_FORBIDDEN: {
    category: 'denied',
    details: z.strictObject({ principal: str, permission: str, custodian: str.nullable() }),
  },
  // The service: no valid credentials (401). `scheme`: bearer, jwt, token or mtls; `reason` a fixed word.
  ERR_UNAUTHENTICATED: {
    category: 'denied',
    details: z.strictObject({ scheme: str.optional(), reason: str }),
  },
  // The service: no such route (404).
  ERR_NOT_FOUND: { category: 'input', details: z.strictObject({ method: str, path: str }) },
  // The service: a body over its limit (413); the limit in bytes.
  ERR_PAYLOAD_TOO_LARGE: { category: 'input', details: z.strictObject({ limitBytes: int }) },
  // The service: a request not received (or not finished) within its deadline (408).
  ERR_REQUEST_TIMEOUT: { category: 'input', details: z.strictObject({ timeoutMs: int }) },
  // The service: a principal over its request rate (429, with Retry-After).
  ERR_RATE_LIMITED: {
    category: 'denied',
    details: z.strictObject({ limit: int, timeWindowMs: int, retryAfterSeconds: int }),
  },
  // The service: at a capacity limit, e.g. concurrent event streams (503); try again later.
  ERR_SERVER_BUSY: { category: 'fault', details: z.strictObject({ limit: int, resource: str }) },
  // API tokens (decideApiToken.ts): revoking a token the ledger never recorded, or one already revoked.
  ERR_TOKEN_NOT_FOUND: { category: 'rule', details: z.strictObject({ tokenId: str }) },
  ERR_TOKEN_REVOKED: { category: 'rule', details: z.strictObject({ tokenId: str }) },
  // Rotation policies (decideRotationPolicy.ts): clearing a policy the target does not have.
  // `target` is `scope`, `default` or `system`; `scope` names the scope for the first.
  ERR_ROTATION_POLICY_NOT_FOUND: {
    category: 'rule',
    details: z.strictObject({ target: str, scope: scope.optional() }),
  },
  // import-managed-key: the key is already recorded under another scope (a key never serves two).
  ERR_KEY_IN_OTHER_SCOPE: {
    category: 'rule',
    details: z.strictObject({ scope, otherScope: scope, checksum: str }),
  },
  // reencrypt (legacy data): the key named is not one legacy data can be read under — unknown
  // (scope and state null), not ACTIVE or INACTIVE, or not recorded by import-managed-key.
  ERR_LEGACY_KEY_UNUSABLE: {
    category: 'rule',
    details: z.strictObject({
      metadataHash,
      scope: scope.nullable(),
      state: str.nullable(),
      imported: z.boolean(),
    }),
  },
  // Legacy re-encryption campaigns (decideLegacyReencryption.ts): unknown, or completed already.
  ERR_REENCRYPTION_NOT_FOUND: { category: 'rule', details: z.strictObject({ campaign: str }) },
  ERR_REENCRYPTION_COMPLETED: { category: 'rule', details: z.strictObject({ campaign: str }) },
  // rotate-due-keys ran and some due action failed (the others were done): what, and the first failure.
  ERR_DUE_ROTATION_FAILED: {
    category: 'fault',
    details: z.strictObject({ failed: int, firstCode: str, firstTarget: str }),
  },
  // Anything not a KeyledgerError, reported at an edge (CLI, HTTP) by its class name and message only.
  ERR_INTERNAL: { category: 'fault', details: none },
} as const satisfies Record<string, { category: ErrorCategory; details: z.ZodType }>;

export type ErrorCode = keyof typeof ERRORS;

/** Each code's category (decides the CLI exit code and, later, the HTTP status). */
export const ERROR_CODES = Object.fromEntries(
  Object.entries(ERRORS).map(([code, entry]) => [code, entry.category]),
) as { readonly [C in ErrorCode]: (typeof ERRORS)[C]['category'] };

/** The details of one code, as its schema declares them. */
export type ErrorDetailsOf<C extends ErrorCode> = z.input<(typeof ERRORS)[C]['details']>;

/** Details of any code (what a caller holding an unknown KeyledgerError can rely on). */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** The zod schema of a code's details (for the HTTP API's error documents). */
export function errorDetailsSchema<C extends ErrorCode>(code: C): (typeof ERRORS)[C]['details'] {
  return ERRORS[code].details;
}

export class KeyledgerError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: ErrorDetailsOf<C> & ErrorDetails;

  constructor(code: C, message: string, details: ErrorDetailsOf<C>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyledgerError';
    this.code = code;
    this.details = details as ErrorDetailsOf<C> & ErrorDetails;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: C; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isKeyledgerError<C extends ErrorCode = ErrorCode>(
  error: unknown,
  code?: C,
): error is KeyledgerError<C> {
  return error instanceof KeyledgerError && (code === undefined || error.code === code);
}

/** A write lost an optimistic-concurrency race; the ledger re-decides on it. */
export class VersionConflictError extends KeyledgerError<'ERR_VERSION_CONFLICT'> {
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
export class EventSchemaError extends KeyledgerError<'ERR_EVENT_SCHEMA'> {
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
