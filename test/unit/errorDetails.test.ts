import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  ERROR_CODES,
  ERRORS,
  type ErrorCode,
  type ErrorDetailsOf,
  errorDetailsSchema,
  KeyledgerError,
} from '../../src/domain/errors.js';

/**
 * Issue 10, item 4: every error code declares the one shape of its `details` (a zod schema), and
 * KeyledgerError's constructor is typed by it, so the compiler checks every throw site. This test
 * walks every code: a sample of each (the mapped type below makes leaving one out a compile
 * error) parses under its schema, and no code is declared without being used or used undeclared.
 */
const SCOPE = 'dGVuYW50LTE=:orders';
const HASH = 'B'.repeat(43);
const SAMPLES: { readonly [C in ErrorCode]: ErrorDetailsOf<C> } = {
  ERR_INVALID_CUSTODIAN: { custodian: 'acme:' },
  ERR_INVALID_NAMESPACE: { bytes: 256 },
  ERR_INVALID_METADATA: { metadataHash: 'short' },
  ERR_INVALID_ARGUMENT: { batchSize: 0 },
  ERR_INVALID_CONFIG: { file: '/etc/keyledger/keystore.pass', mode: '0644' },
  ERR_INVALID_STORE_URL: { scheme: 'ftp' },
  ERR_KEY_NOT_FOUND: { scope: SCOPE, metadataHash: HASH },
  ERR_KEY_ALREADY_DISABLED: { scope: SCOPE, metadataHash: HASH, state: 'DISABLED' },
  ERR_KEY_NOT_DISABLED: { scope: SCOPE, metadataHash: HASH, state: 'ACTIVE' },
  ERR_KEY_DISABLED: { scope: SCOPE, metadataHash: HASH, state: 'DISABLED' },
  ERR_KEY_MANAGEMENT_NOT_ENABLED: { scope: SCOPE, marker: null },
  ERR_KEY_MANAGEMENT_DISABLED: { scope: SCOPE },
  ERR_LEDGER_NOT_INITIALISED: {},
  ERR_LEDGER_ALREADY_INITIALISED: { sequence: 1 },
  ERR_INVALID_TRANSITION: { keyId: 'a'.repeat(32), from: 'DESTROYED', to: 'ACTIVE' },
  ERR_SYSTEM_KEY_NOT_RETIRED: { identity: '3bdbe0fdbeaed3df', sequence: 1 },
  ERR_SYSTEM_KEY_IN_USE: { identity: '3bdbe0fdbeaed3df', keys: 2, sequence: 1 },
  ERR_SYSTEM_KEY_CURRENT: { identity: '3bdbe0fdbeaed3df', sequence: 2 },
  ERR_SYSTEM_KEY_RETIRED: { identity: '3bdbe0fdbeaed3df' },
  ERR_SYSTEM_KEY_ALREADY_RETIRED: { identity: '3bdbe0fdbeaed3df', sequence: 1 },
  ERR_REWRAP_IN_PROGRESS: { campaignId: 'c1', targetStkIdentity: '3bdbe0fdbeaed3df' },
  ERR_REWRAP_NOT_FOUND: { campaignId: 'c1' },
  ERR_REWRAP_FINISHED: { campaignId: 'c1' },
  ERR_REWRAP_TARGET_CHANGED: { campaignId: 'c1', targetStkIdentity: '3bdbe0fdbeaed3df' },
  ERR_INVALID_AS_OF: { at: 'yesterday-ish' },
  ERR_AS_OF_IN_FUTURE: { at: '2999-01-01T00:00:00.000Z' },
  ERR_AS_OF_BEFORE_LEDGER: { at: '2000-01-01T00:00:00.000Z' },
  ERR_KEY_ACTIVE: { scope: SCOPE, metadataHash: HASH },
  ERR_KEY_DESTROYED: { scope: SCOPE, metadataHash: HASH },
  ERR_KEY_DESTRUCTION_SCHEDULED: { scope: SCOPE, metadataHash: HASH, dueAt: '2026-12-09T00:00:00.000Z' },
  ERR_KEY_DESTRUCTION_NOT_SCHEDULED: { scope: SCOPE, metadataHash: HASH, state: 'INACTIVE' },
  ERR_SCOPE_NOT_FOUND: { scope: SCOPE },
  ERR_AUDIT_FILE_INVALID: { path: 'audit.jsonl', line: 3 },
  ERR_PROVIDER_NO_KEY: { scope: SCOPE },
  ERR_PROVIDER_KEY_NOT_ACTIVE: { scope: SCOPE, providerState: 'DISABLED' },
  ERR_PROVIDER_WRONG_SCOPE: { scope: SCOPE, answeredScope: 'Kg==:*' },
  ERR_PROVIDER_INVALID_ANSWER: { scope: SCOPE, metadataHash: HASH },
  ERR_PROVIDER_FAILED: { scope: SCOPE, metadataHash: HASH },
  ERR_REFRESH_INCOMPLETE: { scope: SCOPE, failedKeys: 1, firstCode: 'ERR_PROVIDER_FAILED', position: '12' },
  ERR_NO_ACTIVE_KEY: { custodian: 'dGVuYW50LTE=', namespace: 'orders' },
  ERR_KEY_CACHE_THRASHING: { custodian: 'dGVuYW50LTE=' },
  ERR_DECRYPTION_FAILED: {},
  ERR_KEYSTORE_NOT_FOUND: { path: 'keys.p12' },
  ERR_KEYSTORE_PASSWORD: { env: 'KEYSTORE_PASSWORD' },
  ERR_KEYSTORE_FORMAT: { oid: '1.2.840.113549.1.12.1.3' },
  ERR_KEYSTORE_ALIAS_NOT_FOUND: { path: 'keys.p12', alias: 'stk-2026' },
  ERR_PKCS11_MODULE: { module: '/usr/lib/softhsm/libsofthsm2.so' },
  ERR_PKCS11_TOKEN_NOT_FOUND: { tokenLabel: 'keyledger' },
  ERR_PKCS11_PIN: { tokenLabel: 'keyledger', pinEnv: 'KEYLEDGER_HSM_PIN', reason: 'incorrect' },
  ERR_PKCS11_TIMEOUT: { tokenLabel: 'keyledger', operation: 'C_Decrypt', ms: 10000 },
  ERR_PKCS11_KEY_NOT_FOUND: { tokenLabel: 'keyledger', label: 'keyledger-stk.v1' },
  ERR_PKCS11_KEY_NOT_PERMITTED: {
    tokenLabel: 'keyledger',
    label: 'keyledger-stk.v1',
    attribute: 'CKA_ENCRYPT',
  },
  ERR_PKCS11_DEVICE: { tokenLabel: 'keyledger', operation: 'C_Encrypt', rv: 'CKR_DEVICE_REMOVED' },
  ERR_KEY_UNWRAP_FAILED: { metadataHash: HASH, stkIdentity: '3bdbe0fdbeaed3df' },
  ERR_SYSTEM_KEY_NOT_FOUND: { identity: '3bdbe0fdbeaed3df', sequence: 1 },
  ERR_SYSTEM_KEY_NOT_CONFIGURED: { alias: 'tenant-a-key' },
  ERR_VERSION_CONFLICT: { stream: 'kl-system', expected: '1', actual: '2' },
  ERR_EVENT_SCHEMA: { stream: 'kl-system', revision: '0', type: 'SystemKeyRecorded' },
  ERR_STORE: { operation: 'append', stream: 'kl-system' },
  ERR_STORE_CLOSED: {},
  ERR_UNAUTHENTICATED: { scheme: 'jwt', reason: 'expired' },
  ERR_NOT_FOUND: { method: 'POST', path: '/v1/init' },
  ERR_PAYLOAD_TOO_LARGE: { limitBytes: 1048576 },
  ERR_REQUEST_TIMEOUT: { timeoutMs: 30000 },
  ERR_RATE_LIMITED: { limit: 100, timeWindowMs: 60000, retryAfterSeconds: 12 },
  ERR_SERVER_BUSY: { limit: 100, resource: 'event streams' },
  ERR_INTERNAL: {},
  ERR_TOKEN_NOT_FOUND: { tokenId: '0123456789abcdef' },
  ERR_TOKEN_REVOKED: { tokenId: '0123456789abcdef' },
  ERR_ROTATION_POLICY_NOT_FOUND: { target: 'scope', scope: 'Kg==:orders' },
  ERR_KEY_IN_OTHER_SCOPE: { scope: 'Kg==:orders', otherScope: 'Kg==:billing', checksum: '0123456789abcdef' },
  ERR_LEGACY_KEY_UNUSABLE: { metadataHash: 'mh', scope: 'Kg==:orders', state: 'DISABLED', imported: true },
  ERR_REENCRYPTION_NOT_FOUND: { campaign: 'orders-2019' },
  ERR_REENCRYPTION_COMPLETED: { campaign: 'orders-2019' },
  ERR_DUE_ROTATION_FAILED: { failed: 1, firstCode: 'ERR_PROVIDER_FAILED', firstTarget: 'Kg==:orders' },
  ERR_FORBIDDEN: { principal: 'app-1', permission: 'decrypt', custodian: 'dGVuYW50LTE=' },
  ERR_LEDGER_TAMPERED: { position: '7', stream: 'kl-system', kind: 'bad-mac' },
  ERR_STORE_UNAVAILABLE: { operation: 'append', url: 'esdb://localhost:2113', waitedMs: 5000 },
  ERR_ANCHOR_FILE: { file: '/var/lib/keyledger-anchor/anchors.jsonl' },
  ERR_SERVER_UNAVAILABLE: { url: 'https://keyledger.internal:8443', reason: 'ECONNREFUSED' },
};

const CODES = Object.keys(ERRORS) as ErrorCode[];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('error codes and their details', () => {
  it('every code declares a category and a details schema, publishable as JSON Schema', () => {
    assert.ok(CODES.length > 0);
    for (const code of CODES) {
      assert.ok(['input', 'rule', 'denied', 'fault'].includes(ERRORS[code].category), code);
      assert.equal(ERROR_CODES[code], ERRORS[code].category, code);
      const schema = errorDetailsSchema(code);
      assert.ok(schema instanceof z.ZodType, code);
      const json = z.toJSONSchema(schema) as { type?: unknown };
      assert.equal(json.type, 'object', code);
    }
  });

  it('a sample error of every code has details its schema accepts, and serialises with them', () => {
    for (const code of CODES) {
      const error = new KeyledgerError(code, `sample ${code}`, SAMPLES[code]);
      const parsed = ERRORS[code].details.safeParse(error.details);
      assert.ok(parsed.success, `${code}: ${parsed.success ? '' : z.prettifyError(parsed.error)}`);
      assert.deepEqual(JSON.parse(JSON.stringify(error)), {
        code,
        message: `sample ${code}`,
        details: SAMPLES[code],
      });
    }
  });

  it('a shape is closed: an unknown field or a wrong type is refused', () => {
    assert.equal(ERRORS.ERR_KEY_NOT_FOUND.details.safeParse({ scope: SCOPE, custodian: 'x' }).success, false);
    assert.equal(ERRORS.ERR_KEY_NOT_FOUND.details.safeParse({ metadataHash: HASH }).success, false);
    assert.equal(ERRORS.ERR_DECRYPTION_FAILED.details.safeParse({ keyId: 'x' }).success, false);
    assert.equal(
      ERRORS.ERR_STORE_UNAVAILABLE.details.safeParse({ ...SAMPLES.ERR_STORE_UNAVAILABLE, waitedMs: '5' })
        .success,
      false,
    );
  });

  it('every code thrown in src is declared, and every declared code is thrown somewhere', () => {
    const root = new URL('../../src/', import.meta.url).pathname;
    const used = new Set<string>();
    for (const file of sourceFiles(root)) {
      if (file.endsWith(join('domain', 'errors.ts'))) continue;
      // Node's own codes (util.parseArgs reports ERR_PARSE_ARGS_*, the HTTP server ERR_HTTP_*) are
      // compared, not thrown.
      for (const match of readFileSync(file, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g))
        if (!/^ERR_(PARSE_ARGS|HTTP)_/.test(match[1] ?? '')) used.add(match[1] ?? '');
    }
    const declared = new Set<string>(CODES);
    assert.deepEqual(
      [...used].filter((code) => !declared.has(code)),
      [],
      'used but not declared',
    );
    assert.deepEqual(
      CODES.filter((code) => !used.has(code)),
      [],
      'declared but never used',
    );
  });
});
