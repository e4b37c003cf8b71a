import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AccessDeniedError,
  NotLeaderError,
  StreamDeletedError,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { KeyledgerError } from '../../src/domain/errors.js';
import { conflictFrom, isTransient, toStoreError } from '../../src/store/esdb/esdbErrors.js';

const URL = 'esdb://***@node1:2113?tls=true';

describe('EventStoreDB errors at the adapter edge', () => {
  it('tells transient failures (retried) from answers (not retried)', () => {
    assert.equal(isTransient(new UnavailableError()), true);
    assert.equal(isTransient(Object.assign(new Error('14 UNAVAILABLE'), { code: 14 })), true);
    assert.equal(isTransient(Object.assign(new Error('4 DEADLINE_EXCEEDED'), { code: 4 })), true);
    assert.equal(isTransient(new Error('Failed to discover after 10 attempts.')), true);
    assert.equal(isTransient(new AccessDeniedError()), false);
    assert.equal(isTransient(new StreamNotFoundError(undefined, 's')), false);
    assert.equal(
      isTransient(new WrongExpectedVersionError(undefined, { streamName: 's', expected: 1n, current: 2n })),
      false,
    );
    assert.equal(isTransient(new KeyledgerError('ERR_STORE', 'x', {})), false);
    assert.equal(isTransient(new Error('anything else')), false);
  });

  it('maps a wrong expected version to VersionConflictError, keeping the original', () => {
    const original = new WrongExpectedVersionError(undefined, {
      streamName: 's',
      expected: 1n,
      current: 'no_stream',
    });
    const conflict = conflictFrom(original, 's', 1n);
    assert.equal(conflict.code, 'ERR_VERSION_CONFLICT');
    assert.deepEqual(conflict.details, { stream: 's', expected: '1', actual: 'no_stream' });
    assert.equal(conflict.cause, original);
  });

  it('maps the rest to ERR_STORE_UNAVAILABLE or ERR_STORE with the URL and the original as cause', () => {
    const down = new UnavailableError();
    const unavailable = toStoreError(down, URL, 'append', 5000);
    assert.equal(unavailable.code, 'ERR_STORE_UNAVAILABLE');
    assert.deepEqual(unavailable.details, { url: URL, operation: 'append', waitedMs: 5000 });
    assert.equal(unavailable.cause, down);
    assert.ok(unavailable.message.includes(URL));

    const denied = toStoreError(new AccessDeniedError(), URL, 'readStream');
    assert.equal(denied.code, 'ERR_STORE');
    assert.equal(denied.details.reason, 'access-denied');

    const tombstoned = toStoreError(StreamDeletedError.fromStreamName('kl-system'), URL, 'append');
    assert.equal(tombstoned.code, 'ERR_STORE');
    assert.equal(tombstoned.details.reason, 'stream-deleted');
    assert.equal(tombstoned.details.stream, 'kl-system');

    const odd = new Error('something odd');
    const other = toStoreError(odd, URL, 'deleteStream');
    assert.equal(other.code, 'ERR_STORE');
    assert.equal(other.cause, odd);

    const ours = new KeyledgerError('ERR_INVALID_ARGUMENT', 'x', {});
    assert.equal(toStoreError(ours, URL, 'append'), ours);
  });

  it('counts a not-leader answer as transient: the client has already switched to the leader', () => {
    const error = Object.create(NotLeaderError.prototype) as NotLeaderError;
    assert.equal(isTransient(error), true);
  });
});
