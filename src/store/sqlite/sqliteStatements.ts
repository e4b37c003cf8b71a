import type Database from 'better-sqlite3';
import type { RecordedEvent, SnapshotRow } from '../eventStore.js';
import { parseStoredObject } from './storedJson.js';

/** Every statement the sqlite store runs, prepared once per connection (sqliteSchema.ts has the tables). */

const EVENT_COLUMNS = 'position, stream, revision, event_id, type, data, metadata, recorded_at';

export type EventRow = [
  position: bigint,
  stream: string,
  revision: bigint,
  eventId: string,
  type: string,
  data: string,
  metadata: string,
  recordedAt: bigint,
];

export function toRecorded(row: EventRow): RecordedEvent {
  const event = { stream: row[1], revision: row[2], type: row[4] };
  return {
    streamName: row[1],
    revision: row[2],
    position: row[0],
    eventId: row[3],
    type: row[4],
    data: parseStoredObject(row[5], event, 'data'),
    metadata: parseStoredObject(row[6], event, 'metadata'),
    recordedAt: new Date(Number(row[7])),
  };
}

/** A snapshot row with its rowid (the page's resume point). */
export interface SnapshotRowAt extends SnapshotRow {
  readonly at: number;
}

export interface SqliteStatements {
  readonly findEvent: Database.Statement<[string], [string, bigint, bigint]>;
  readonly streamState: Database.Statement<[string], [bigint, bigint]>;
  readonly insertEvent: Database.Statement<[string, bigint, string, string, string, string, number]>;
  readonly upsertStream: Database.Statement<[string, bigint]>;
  readonly selectStream: Database.Statement<[string, bigint], EventRow>;
  readonly selectHead: Database.Statement<[], bigint>;
  readonly selectPage: Database.Statement<[bigint, bigint, number], EventRow>;
  readonly selectPrefixPage: Database.Statement<[bigint, bigint, number, Buffer, number], EventRow>;
  readonly deleteEvents: Database.Statement<[string]>;
  readonly markDeleted: Database.Statement<[string]>;
  readonly selectSnapshot: Database.Statement<[string], [bigint, string]>;
  readonly upsertSnapshot: Database.Statement<[string, bigint, string]>;
  readonly selectSnapshotPosition: Database.Statement<[string], bigint>;
  readonly selectRow: Database.Statement<[string, string], string>;
  readonly selectRowPage: Database.Statement<[number, string, number], SnapshotRowAt>;
  readonly upsertRow: Database.Statement<[string, string, string]>;
  readonly deleteRow: Database.Statement<[string, string]>;
  readonly deleteRows: Database.Statement<[string]>;
}

export function prepareStatements(db: Database.Database): SqliteStatements {
  return {
    findEvent: db
      .prepare<[string], [string, bigint, bigint]>(
        'SELECT stream, revision, position FROM events WHERE event_id = ?',
      )
      .raw(true)
      .safeIntegers(true),
    streamState: db
      .prepare<[string], [bigint, bigint]>('SELECT last_revision, deleted FROM streams WHERE name = ?')
      .raw(true)
      .safeIntegers(true),
    insertEvent: db
      .prepare<[string, bigint, string, string, string, string, number]>(
        'INSERT INTO events (stream, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .safeIntegers(true),
    upsertStream: db.prepare<[string, bigint]>(
      `INSERT INTO streams (name, last_revision, deleted) VALUES (?, ?, 0)
       ON CONFLICT (name) DO UPDATE SET last_revision = excluded.last_revision, deleted = 0`,
    ),
    selectStream: db
      .prepare<[string, bigint], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision`,
      )
      .raw(true)
      .safeIntegers(true),
    selectHead: db
      .prepare<[], bigint>('SELECT coalesce(max(position), 0) FROM events')
      .pluck(true)
      .safeIntegers(true),
    selectPage: db
      .prepare<[bigint, bigint, number], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`,
      )
      .raw(true)
      .safeIntegers(true),
    selectPrefixPage: db
      .prepare<[bigint, bigint, number, Buffer, number], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events
         WHERE position > ? AND position <= ? AND substr(CAST(stream AS BLOB), 1, ?) = ?
         ORDER BY position LIMIT ?`,
      )
      .raw(true)
      .safeIntegers(true),
    deleteEvents: db.prepare<[string]>('DELETE FROM events WHERE stream = ?'),
    markDeleted: db.prepare<[string]>('UPDATE streams SET deleted = 1 WHERE name = ?'),
    selectSnapshot: db
      .prepare<[string], [bigint, string]>('SELECT position, state FROM snapshots WHERE name = ?')
      .raw(true)
      .safeIntegers(true),
    upsertSnapshot: db.prepare<[string, bigint, string]>(
      `INSERT INTO snapshots (name, position, state) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, state = excluded.state
       WHERE excluded.position >= snapshots.position`,
    ),
    selectSnapshotPosition: db
      .prepare<[string], bigint>('SELECT position FROM snapshots WHERE name = ?')
      .pluck(true)
      .safeIntegers(true),
    selectRow: db
      .prepare<[string, string], string>('SELECT value FROM snapshot_rows WHERE name = ? AND key = ?')
      .pluck(true),
    // Pages in rowid order (the table's own order: a range scan, no sort), filtered by name. The
    // unary + keeps sqlite off the (name, key) index, which would read every row of the name and
    // sort them for each page.
    selectRowPage: db
      // Rows come as objects that are the SnapshotRows the reader yields (no copy per row), their
      // rowid a number (rowids of one table stay far below 2^53).
      .prepare<[number, string, number], SnapshotRowAt>(
        'SELECT key, value, rowid AS at FROM snapshot_rows WHERE rowid > ? AND +name = ? ORDER BY rowid LIMIT ?',
      )
      .safeIntegers(false),
    upsertRow: db.prepare<[string, string, string]>(
      `INSERT INTO snapshot_rows (name, key, value) VALUES (?, ?, ?)
       ON CONFLICT (name, key) DO UPDATE SET value = excluded.value`,
    ),
    deleteRow: db.prepare<[string, string]>('DELETE FROM snapshot_rows WHERE name = ? AND key = ?'),
    deleteRows: db.prepare<[string]>('DELETE FROM snapshot_rows WHERE name = ?'),
  };
}
