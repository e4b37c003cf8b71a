import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import type { EventToAppend } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { testEmbeddedEventStore, testEventStore } from './eventStore.contract.js';

async function tempStore(): Promise<{
  store: SqliteEventStore;
  dir: string;
  path: string;
  cleanup(): Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'keyledger-sqlite-'));
  const path = join(dir, 'ledger.db');
  const store = SqliteEventStore.open(path);
  return { store, dir, path, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

testEventStore('sqlite', tempStore);
testEmbeddedEventStore('sqlite', tempStore);

function event(type = 'Tested', data: EventToAppend['data'] = {}): EventToAppend {
  return { eventId: randomUUID(), type, data, metadata: {} };
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

describe('SqliteEventStore', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyledger-sqlite-specific-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates missing parent folders, uses WAL and secure_delete, and keeps events across reopening', async () => {
    const path = join(dir, 'a', 'b', 'ledger.db');
    const store = SqliteEventStore.open(path);
    const result = await store.append('kept', [event()], 'no_stream');
    await store.close();

    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(raw.pragma('user_version', { simple: true }), 2);
    } finally {
      raw.close();
    }

    const reopened = SqliteEventStore.open(path);
    try {
      const [kept] = await reopened.readStream('kept');
      assert.equal(kept?.position, result.position);
      assert.equal((await reopened.append('kept', [event()], 0n)).nextExpectedRevision, 1n);
    } finally {
      await reopened.close();
    }
  });

  it('migrates a version 1 file: its snapshots kept, in a table whose lookups skip the other rows', async () => {
    const path = join(dir, 'v1.db');
    const raw = new Database(path);
    raw.exec(`CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,
      revision INTEGER NOT NULL, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, data TEXT NOT NULL,
      metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, UNIQUE (stream, revision));
      CREATE TABLE streams (name TEXT PRIMARY KEY, last_revision INTEGER NOT NULL, deleted INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE snapshots (name TEXT PRIMARY KEY, position INTEGER NOT NULL, state TEXT NOT NULL) WITHOUT ROWID;`);
    raw
      .prepare('INSERT INTO snapshots VALUES (?, ?, ?)')
      .run('big', 5, JSON.stringify({ x: 'y'.repeat(100_000) }));
    raw.prepare('INSERT INTO snapshots VALUES (?, ?, ?)').run('small', 7, '{"revision":"3"}');
    raw.pragma('user_version = 1');
    raw.close();
    const store = SqliteEventStore.open(path);
    try {
      assert.deepEqual(await store.loadSnapshot('small'), { position: 7n, state: { revision: '3' } });
      const big = (await store.loadSnapshot('big'))?.state as { x?: string } | undefined;
      assert.equal(big?.x?.length, 100_000);
    } finally {
      await store.close();
    }
    const migrated = new Database(path, { readonly: true });
    try {
      assert.equal(migrated.pragma('user_version', { simple: true }), 2);
      const sql = migrated.prepare("SELECT sql FROM sqlite_master WHERE name = 'snapshots'").pluck().get();
      assert.doesNotMatch(String(sql), /WITHOUT ROWID/);
    } finally {
      migrated.close();
    }
  });

  it('refuses a database from a newer schema, and a file that is not a database', async () => {
    const newer = join(dir, 'newer.db');
    const raw = new Database(newer);
    raw.pragma('user_version = 99');
    raw.close();
    assert.throws(
      () => SqliteEventStore.open(newer),
      (error: unknown) => codeOf(error) === 'ERR_STORE',
    );

    const garbage = join(dir, 'garbage.db');
    await writeFile(garbage, 'this is not a sqlite database, not even close'.repeat(100));
    assert.throws(
      () => SqliteEventStore.open(garbage),
      (error: unknown) => codeOf(error) === 'ERR_STORE' && (error as Error).cause instanceof Error,
    );
  });

  it('rejects a poll interval that is not a positive number', () => {
    for (const pollIntervalMs of [0, -1, Number.NaN]) {
      assert.throws(
        () => SqliteEventStore.open(join(dir, 'poll.db'), { pollIntervalMs }),
        (error: unknown) => codeOf(error) === 'ERR_INVALID_ARGUMENT',
      );
    }
  });

  it('rolls back a batch that fails halfway through writing, as ERR_STORE with the cause', async () => {
    const path = join(dir, 'rollback.db');
    const store = SqliteEventStore.open(path);
    try {
      await store.append('rollback', [event()], 'no_stream');
      // Another connection plants a trigger that fails the third insert of the next batch.
      const raw = new Database(path);
      raw.exec(
        `CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.type = 'Boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`,
      );
      raw.close();
      await assert.rejects(
        store.append('rollback', [event(), event(), event('Boom')], 0n),
        (error: unknown) => codeOf(error) === 'ERR_STORE' && (error as Error).cause instanceof Error,
      );
      assert.equal((await store.readStream('rollback')).length, 1);
      assert.equal((await store.append('rollback', [event()], 0n)).nextExpectedRevision, 1n);
    } finally {
      await store.close();
    }
  });

  it('erases a deleted stream from the database file and the WAL', async () => {
    const path = join(dir, 'shred.db');
    const store = SqliteEventStore.open(path);
    const marker = `SHRED-ME-${randomUUID()}`;
    try {
      await store.append('keep', [event('Kept', { note: 'nothing secret' })], 'no_stream');
      await store.append('shred', [event('Wrapped', { material: marker.repeat(50) })], 'no_stream');
      await store.append('shred', [event('Wrapped', { material: marker })], 0n);
      await store.append('keep', [event('Kept', { note: 'after' })], 0n);
      await store.deleteStream('shred');
      for (const file of [path, `${path}-wal`]) {
        const bytes = await readFile(file).catch(() => Buffer.alloc(0));
        assert.equal(bytes.includes(marker), false, `${file} still holds the deleted data`);
      }
      assert.equal((await store.readStream('keep')).length, 2);
    } finally {
      await store.close();
    }
    const bytes = await readFile(path);
    assert.equal(bytes.includes(marker), false);
  });

  it('delivers events written through another connection to a subscriber, by polling', async () => {
    const path = join(dir, 'two-connections.db');
    const reader = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    const writer = SqliteEventStore.open(path);
    try {
      await writer.append('elsewhere', [event()], 'no_stream');
      const received = firstValueFrom(
        reader.subscribe({ streamPrefix: 'elsewhere' }).pipe(take(3), toArray(), timeout(5000)),
      );
      await new Promise((done) => setTimeout(done, 30));
      await writer.append('elsewhere', [event(), event()], 0n);
      const found = await received;
      assert.deepEqual(
        found.map((recorded) => recorded.revision),
        [0n, 1n, 2n],
      );
    } finally {
      await reader.close();
      await writer.close();
    }
  });
});
