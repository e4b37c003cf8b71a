import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERRORS, type ErrorCode, KeyledgerError } from '../../src/domain/errors.js';
import { httpStatusOf } from '../../src/server/httpStatus.js';
import { problemOf } from '../../src/server/problem.js';

describe('problems: the HTTP status of every code, and ERR_INTERNAL for the rest', () => {
  it('maps codes as the protocol’s table says', () => {
    const expected: Partial<Record<ErrorCode, number>> = {
      ERR_INVALID_ARGUMENT: 400,
      ERR_INVALID_CUSTODIAN: 400,
      ERR_DECRYPTION_FAILED: 400,
      ERR_UNAUTHENTICATED: 401,
      ERR_FORBIDDEN: 403,
      ERR_KEY_NOT_FOUND: 404,
      ERR_SCOPE_NOT_FOUND: 404,
      ERR_REWRAP_NOT_FOUND: 404,
      ERR_NOT_FOUND: 404,
      ERR_REQUEST_TIMEOUT: 408,
      ERR_KEY_ALREADY_DISABLED: 409,
      ERR_TOKEN_REVOKED: 409,
      ERR_NO_ACTIVE_KEY: 409,
      ERR_PAYLOAD_TOO_LARGE: 413,
      ERR_RATE_LIMITED: 429,
      ERR_INTERNAL: 500,
      ERR_PROVIDER_FAILED: 500,
      ERR_SERVER_BUSY: 503,
      ERR_STORE_UNAVAILABLE: 503,
    };
    for (const [code, status] of Object.entries(expected)) {
      assert.equal(httpStatusOf(code as ErrorCode), status, code);
    }
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      assert.ok([400, 401, 403, 404, 408, 409, 413, 429, 500, 503].includes(httpStatusOf(code)), code);
    }
  });

  it('keeps a KeyledgerError’s code, message and details', () => {
    const error = new KeyledgerError('ERR_SCOPE_NOT_FOUND', 'no scope', { scope: 'Kg==:x' });
    assert.deepEqual(problemOf(error, 'r-1'), {
      type: 'https://keyledger.dev/errors/ERR_SCOPE_NOT_FOUND',
      title: 'no scope',
      status: 404,
      code: 'ERR_SCOPE_NOT_FOUND',
      details: { scope: 'Kg==:x' },
      requestId: 'r-1',
    });
  });

  it('turns anything else into ERR_INTERNAL naming nothing of it', () => {
    const problem = problemOf(new TypeError('password=hunter2 at /srv/secret/path'), 'r-2');
    assert.equal(problem.code, 'ERR_INTERNAL');
    assert.equal(problem.status, 500);
    assert.deepEqual(problem.details, {});
    assert.doesNotMatch(JSON.stringify(problem), /hunter2|secret|TypeError/);
  });
});
