import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { EventLog, type ProposedEvent, type StreamView } from './eventLog.js';
import { ANY_REVISION } from './expectedRevision.js';
import { DELETED_STREAM_REVISION, parseStreamMetadata } from './streamMetadata.js';

/** The log's server rules that need a controlled clock or are awkward to reach through the client. */

function proposed(type = 'Tested', data: unknown = {}): ProposedEvent {
  return {
    id: randomUUID(),
    type,
    contentType: 'application/json',
    data: Buffer.from(JSON.stringify(data)),
    customMetadata: new Uint8Array(),
  };
}

function revisions(view: StreamView): bigint[] | string {
  return view.kind === 'events' ? view.events.map((event) => event.revision) : view.kind;
}

describe('EventLog', () => {
  it('hides events older than $maxAge from stream reads, as of the time of the read', () => {
    let now = 1_000_000;
    const log = new EventLog(() => now);
    log.append('aged', ANY_REVISION, [proposed(), proposed()]);
    now += 30_000;
    log.append('aged', ANY_REVISION, [proposed()]);
    log.append('$$aged', ANY_REVISION, [proposed('$metadata', { $maxAge: 60 })]);

    assert.deepEqual(revisions(log.streamView('aged')), [0n, 1n, 2n]);
    now += 31_000;
    assert.deepEqual(revisions(log.streamView('aged')), [2n]);
    now += 30_000;
    assert.deepEqual(revisions(log.streamView('aged')), []);
    assert.equal(log.records.filter((event) => event.streamName === 'aged').length, 3, '$all keeps them');
  });

  it('keeps only the latest event of a metastream visible', () => {
    const log = new EventLog();
    log.append('$$kept', ANY_REVISION, [proposed('$metadata', { $maxCount: 5 })]);
    log.append('$$kept', ANY_REVISION, [proposed('$metadata', { $maxCount: 3 })]);
    assert.deepEqual(revisions(log.streamView('$$kept')), [1n]);
    assert.equal(log.metadataOf('kept').maxCount, 3n);
  });

  it('soft delete replaces the metadata with $tb = long.MaxValue; new metadata on the deleted stream undeletes it', () => {
    const log = new EventLog();
    log.append('meta', ANY_REVISION, [proposed(), proposed()]);
    log.append('$$meta', ANY_REVISION, [proposed('$metadata', { $maxCount: 100, custom: 'kept?' })]);
    const deleted = log.softDelete('meta', { kind: 'revision', revision: 1n });
    assert.equal(deleted.kind, 'success');
    assert.equal(log.metadataOf('meta').truncateBefore, DELETED_STREAM_REVISION);
    assert.equal(log.metadataOf('meta').maxCount, undefined);
    assert.equal(log.streamView('meta').kind, 'not_found');

    // Setting metadata on a soft-deleted stream: the server rewrites its $tb to the next revision.
    log.append('$$meta', { kind: 'revision', revision: 1n }, [proposed('$metadata', { $maxCount: 7 })]);
    assert.deepEqual(log.metadataOf('meta'), { maxCount: 7n, truncateBefore: 2n });
    assert.deepEqual(revisions(log.streamView('meta')), [], 'an empty stream, no longer not-found');
  });

  it('recreating a soft-deleted stream keeps the other metadata keys and sets $tb to the first new revision', () => {
    const log = new EventLog();
    log.append('keep', ANY_REVISION, [proposed(), proposed()]);
    log.append('$$keep', ANY_REVISION, [
      proposed('$metadata', { $maxCount: 100, $tb: Number(DELETED_STREAM_REVISION), custom: 17 }),
    ]);
    assert.equal(log.streamView('keep').kind, 'not_found', 'a $tb of long.MaxValue is a soft delete');

    const recreated = log.append('keep', { kind: 'revision', revision: 1n }, [proposed()]);
    assert.deepEqual(recreated.kind === 'success' && recreated.currentRevision, 2n);
    const latest = log.streamView('$$keep');
    assert.ok(latest.kind === 'events');
    const metadata = JSON.parse(Buffer.from(latest.events[0]?.data ?? []).toString('utf8'));
    assert.deepEqual(metadata, { $maxCount: 100, $tb: 2, custom: 17 });
    assert.deepEqual(parseStreamMetadata(latest.events[0]?.data ?? new Uint8Array()).truncateBefore, 2n);
  });

  it('refuses a retry whose ids were only partly written (corrupted idempotency) and writes nothing', () => {
    const log = new EventLog();
    const a = proposed();
    const b = proposed();
    log.append('partial', ANY_REVISION, [a, b]);
    const before = log.records.length;
    const outcome = log.append('partial', ANY_REVISION, [a, proposed()]);
    assert.deepEqual(outcome, {
      kind: 'wrong_expected_version',
      currentRevision: 1n,
      expected: ANY_REVISION,
    });
    assert.equal(log.records.length, before);
  });

  it('STREAM_EXISTS on a soft-deleted stream is stream-deleted; on a tombstoned stream everything is', () => {
    const log = new EventLog();
    log.append('gone', ANY_REVISION, [proposed()]);
    log.softDelete('gone', ANY_REVISION);
    assert.deepEqual(log.append('gone', { kind: 'stream_exists' }, [proposed()]), { kind: 'stream_deleted' });

    log.tombstone('gone', ANY_REVISION);
    assert.equal(log.streamView('gone').kind, 'deleted');
    assert.equal(log.streamView('$$gone').kind, 'deleted', 'the metastream goes with it');
    assert.deepEqual(log.append('$$gone', ANY_REVISION, [proposed()]), { kind: 'stream_deleted' });
    assert.deepEqual(log.softDelete('gone', ANY_REVISION), { kind: 'stream_deleted' });
    const tombstone = log.records.at(-1);
    assert.deepEqual(
      [tombstone?.streamName, tombstone?.type, tombstone?.revision],
      ['gone', '$streamDeleted', DELETED_STREAM_REVISION],
    );
  });

  it('never puts an event at position 0 and spaces positions by record size', () => {
    const log = new EventLog();
    log.append('sized', ANY_REVISION, [
      proposed('A', { small: 1 }),
      proposed('B', { large: 'x'.repeat(500) }),
    ]);
    const [first, second] = log.records;
    assert.ok(first !== undefined && second !== undefined);
    assert.ok(first.position > 0n);
    assert.ok(second.position - first.position > BigInt(first.data.length));
  });
});
