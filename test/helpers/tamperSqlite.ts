import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { eventHash } from '../../src/audit/hashChain.js';
import type { JsonObject } from '../../src/store/eventStore.js';

/**
 * An attacker with write access to the sqlite file: edits the events table directly (schema in
 * src/store/sqliteEventStore.ts), the way tamper evidence must catch. Each edit is done as a careful
 * attacker would: the `streams` table and the position sequence are kept consistent, so the store
 * itself notices nothing. The store must be closed while editing.
 */

export interface StoredRow {
  readonly position: bigint;
  readonly stream: string;
  readonly revision: bigint;
  readonly eventId: string;
  readonly type: string;
  readonly data: string;
  readonly metadata: string;
}

function open(file: string): Database.Database {
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  return db;
}

function withDb<T>(file: string, edit: (db: Database.Database) => T): T {
  const db = open(file);
  try {
    return db.transaction(() => edit(db)).immediate();
  } finally {
    db.close();
  }
}

type Row = {
  position: bigint;
  stream: string;
  revision: bigint;
  event_id: string;
  type: string;
  data: string;
  metadata: string;
};

function toStored(row: Row): StoredRow {
  return {
    position: row.position,
    stream: row.stream,
    revision: row.revision,
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
  };
}

/** Every row, in position order. */
export function readRows(file: string): StoredRow[] {
  const db = open(file);
  try {
    return (db.prepare('SELECT * FROM events ORDER BY position').all() as Row[]).map(toStored);
  } finally {
    db.close();
  }
}

/** The row at `position` (throws if there is none: a test that edits nothing could not fail). */
export function rowAt(file: string, position: bigint): StoredRow {
  const row = readRows(file).find((r) => r.position === position);
  if (row === undefined) throw new Error(`no event at position ${position}`);
  return row;
}

/**
 * Changes one byte of the event's data: the last letter or digit inside a JSON string (so the data
 * still parses), to a different one. Returns the data before and after.
 */
export function changeDataByte(file: string, position: bigint): { before: string; after: string } {
  return withDb(file, (db) => {
    const { data } = db.prepare('SELECT data FROM events WHERE position = ?').get(position) as {
      data: string;
    };
    let index = -1;
    let inString = false;
    for (let i = 0; i < data.length; i++) {
      const c = data.charAt(i);
      if (c === '\\') {
        i++;
        continue;
      }
      if (c === '"') inString = !inString;
      else if (inString && /[0-9a-zA-Z]/.test(c)) index = i;
    }
    if (index < 0) throw new Error(`no letter or digit to change in ${data}`);
    const changed = otherCharacter(data.charAt(index));
    const after = `${data.slice(0, index)}${changed}${data.slice(index + 1)}`;
    db.prepare('UPDATE events SET data = ? WHERE position = ?').run(after, position);
    return { before: data, after };
  });
}

/** Another character of the same class that keeps hex hex and base64 base64 (so schemas still pass). */
function otherCharacter(c: string): string {
  if (c === '9') return '0';
  if (c === 'f' || c === 'z') return 'a';
  if (c === 'F' || c === 'Z') return 'A';
  return String.fromCharCode(c.charCodeAt(0) + 1);
}

/** Deletes the event at `position`. */
export function deleteEvent(file: string, position: bigint): void {
  withDb(file, (db) => {
    const { changes } = db.prepare('DELETE FROM events WHERE position = ?').run(position);
    if (changes !== 1) throw new Error(`no event at position ${position}`);
  });
}

/** Swaps two events' places in the global order (each keeps its stream, revision and content). */
export function swapEvents(file: string, a: bigint, b: bigint): void {
  withDb(file, (db) => {
    const move = db.prepare('UPDATE events SET position = ? WHERE position = ?');
    if (move.run(-1n, a).changes !== 1 || move.run(a, b).changes !== 1) throw new Error('no such events');
    move.run(b, -1n);
    // Revisions follow the new order too, as a careful attacker would make them.
    const rows = db
      .prepare('SELECT position, stream, revision FROM events WHERE position IN (?, ?)')
      .all(a, b) as Row[];
    const [first, second] = rows;
    if (first !== undefined && second !== undefined && first.stream === second.stream) {
      const setRevision = db.prepare('UPDATE events SET revision = ? WHERE position = ?');
      setRevision.run(-1n, first.position);
      setRevision.run(first.revision, second.position);
      setRevision.run(second.revision, first.position);
    }
  });
}

/** Moves every event from `from` on one position up (highest first, keeping positions unique). */
function shiftPositions(db: Database.Database, from: bigint): void {
  db.prepare('UPDATE events SET position = -position WHERE position >= ?').run(from);
  db.prepare('UPDATE events SET position = 1 - position WHERE position < 0').run();
  db.prepare(
    "UPDATE sqlite_sequence SET seq = (SELECT max(position) FROM events) WHERE name = 'events'",
  ).run();
}

/**
 * Inserts a forged event into `after`'s stream, right after it (later revisions and positions move
 * up by one). The forger links it properly to `after` (the hash is no secret), copying its metadata.
 * Returns the forged event's position.
 */
export function insertForgedEvent(
  file: string,
  after: bigint,
  forged: { readonly type: string; readonly data: JsonObject },
): bigint {
  return withDb(file, (db) => {
    const row = db.prepare('SELECT * FROM events WHERE position = ?').get(after) as Row | undefined;
    if (row === undefined) throw new Error(`no event at position ${after}`);
    const previous = toStored(row);
    const prevHash = eventHash({
      streamName: previous.stream,
      eventId: previous.eventId,
      type: previous.type,
      data: JSON.parse(previous.data),
      metadata: JSON.parse(previous.metadata),
    });
    shiftPositions(db, after + 1n);
    db.prepare('UPDATE events SET revision = -revision - 1 WHERE stream = ? AND revision > ?').run(
      previous.stream,
      previous.revision,
    );
    db.prepare('UPDATE events SET revision = -revision WHERE stream = ? AND revision < 0').run(
      previous.stream,
    );
    db.prepare('UPDATE streams SET last_revision = last_revision + 1 WHERE name = ?').run(previous.stream);
    const metadata = { ...JSON.parse(previous.metadata), prevHash };
    db.prepare(
      'INSERT INTO events (position, stream, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(
      after + 1n,
      previous.stream,
      previous.revision + 1n,
      randomUUID(),
      forged.type,
      JSON.stringify(forged.data),
      JSON.stringify(metadata),
      BigInt(Date.now()),
    );
    return after + 1n;
  });
}

/** Drops the last `count` events of `stream` (and says so in `streams`, so the store agrees). */
export function dropLastEvents(file: string, stream: string, count: number): StoredRow[] {
  return withDb(file, (db) => {
    const rows = (
      db
        .prepare('SELECT * FROM events WHERE stream = ? ORDER BY revision DESC LIMIT ?')
        .all(stream, count) as Row[]
    ).map(toStored);
    if (rows.length !== count) throw new Error(`${stream} has fewer than ${count} events`);
    const remove = db.prepare('DELETE FROM events WHERE position = ?');
    for (const row of rows) remove.run(row.position);
    const last = rows.at(-1);
    if (last !== undefined) {
      db.prepare('UPDATE streams SET last_revision = ? WHERE name = ?').run(last.revision - 1n, stream);
    }
    return rows.reverse();
  });
}

/** A stored snapshot as the sqlite file holds it (state parsed). */
export interface StoredSnapshot {
  readonly position: bigint;
  readonly state: unknown;
}

/** The snapshot stored under `name` (throws if there is none). */
export function readSnapshot(file: string, name: string): StoredSnapshot {
  const db = open(file);
  try {
    const row = db.prepare('SELECT position, state FROM snapshots WHERE name = ?').get(name) as
      | { position: bigint; state: string }
      | undefined;
    if (row === undefined) throw new Error(`no snapshot ${name}`);
    return { position: row.position, state: JSON.parse(row.state) };
  } finally {
    db.close();
  }
}

/**
 * Rewrites the snapshot stored under `name` as `edit` returns it: the snapshots table has no
 * integrity of its own, so an attacker may put any state and any position there.
 */
export function editSnapshot(file: string, name: string, edit: (s: StoredSnapshot) => StoredSnapshot): void {
  const edited = edit(readSnapshot(file, name));
  withDb(file, (db) => {
    db.prepare('UPDATE snapshots SET position = ?, state = ? WHERE name = ?').run(
      edited.position,
      JSON.stringify(edited.state),
      name,
    );
  });
}

/** Deletes the snapshot stored under `name` and its rows (snapshots are optional, so nothing requires one). */
export function deleteSnapshot(file: string, name: string): void {
  withDb(file, (db) => {
    db.prepare('DELETE FROM snapshots WHERE name = ?').run(name);
    db.prepare('DELETE FROM snapshot_rows WHERE name = ?').run(name);
  });
}

/** The rows of the row snapshot `name` (table snapshot_rows), by key. */
export function readSnapshotRows(file: string, name: string): Map<string, string> {
  const db = open(file);
  try {
    const rows = db.prepare('SELECT key, value FROM snapshot_rows WHERE name = ?').all(name) as {
      key: string;
      value: string;
    }[];
    return new Map(rows.map((r) => [r.key, r.value]));
  } finally {
    db.close();
  }
}

/** Rewrites the rows of the row snapshot `name` as `edit` leaves the map (the header untouched). */
export function editSnapshotRows(
  file: string,
  name: string,
  edit: (rows: Map<string, string>) => void,
): void {
  const rows = readSnapshotRows(file, name);
  edit(rows);
  withDb(file, (db) => {
    db.prepare('DELETE FROM snapshot_rows WHERE name = ?').run(name);
    const insert = db.prepare('INSERT INTO snapshot_rows (name, key, value) VALUES (?, ?, ?)');
    for (const [key, value] of rows) insert.run(name, key, value);
  });
}

/**
 * Appends a forged event at the end of `stream` (next revision, the store's next position), linked
 * properly to the stream's last event and carrying its metadata: what a careful forger adds to the
 * uncovered tail. Returns the forged event's position.
 */
export function appendForgedEvent(
  file: string,
  stream: string,
  forged: { readonly type: string; readonly data: JsonObject },
): bigint {
  return withDb(file, (db) => {
    const row = db
      .prepare('SELECT * FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1')
      .get(stream) as Row | undefined;
    if (row === undefined) throw new Error(`no stream ${stream}`);
    const last = toStored(row);
    const prevHash = eventHash({
      streamName: last.stream,
      eventId: last.eventId,
      type: last.type,
      data: JSON.parse(last.data),
      metadata: JSON.parse(last.metadata),
    });
    const { head } = db.prepare('SELECT max(position) AS head FROM events').get() as { head: bigint };
    const position = head + 1n;
    db.prepare('UPDATE streams SET last_revision = ? WHERE name = ?').run(last.revision + 1n, stream);
    db.prepare(
      'INSERT INTO events (position, stream, revision, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(
      position,
      stream,
      last.revision + 1n,
      randomUUID(),
      forged.type,
      JSON.stringify(forged.data),
      JSON.stringify({ ...JSON.parse(last.metadata), prevHash }),
      BigInt(Date.now()),
    );
    db.prepare(
      "UPDATE sqlite_sequence SET seq = (SELECT max(position) FROM events) WHERE name = 'events'",
    ).run();
    return position;
  });
}

/** Deletes a whole stream as the store's deleteStream does (the events vanish, the name stays). */
export function deleteStreamRows(file: string, stream: string): StoredRow[] {
  return withDb(file, (db) => {
    const rows = (
      db.prepare('SELECT * FROM events WHERE stream = ? ORDER BY revision').all(stream) as Row[]
    ).map(toStored);
    if (rows.length === 0) throw new Error(`no stream ${stream}`);
    db.prepare('DELETE FROM events WHERE stream = ?').run(stream);
    db.prepare('UPDATE streams SET deleted = 1 WHERE name = ?').run(stream);
    return rows;
  });
}

/** Rewrites the data of the event at `position` as `edit` returns it (the forger's free hand). */
export function editEventData(file: string, position: bigint, edit: (data: JsonObject) => JsonObject): void {
  withDb(file, (db) => {
    const row = db.prepare('SELECT data FROM events WHERE position = ?').get(position) as
      | { data: string }
      | undefined;
    if (row === undefined) throw new Error(`no event at position ${position}`);
    const data = JSON.stringify(edit(JSON.parse(row.data) as JsonObject));
    if (data === row.data) throw new Error('the edit changed nothing');
    db.prepare('UPDATE events SET data = ? WHERE position = ?').run(data, position);
  });
}
