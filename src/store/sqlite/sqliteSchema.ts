import type Database from 'better-sqlite3';
import { KeyledgerError } from '../../domain/errors.js';

/** Bump with a migration whenever the tables change; a file from a newer keyledger is refused. */
const SCHEMA_VERSION = 2;

// Version 2. snapshots is a rowid table: in a WITHOUT ROWID table sqlite reads a row's whole
// record to compare keys once it overflows its page, so looking up the tiny checkpoint hint read
// the whole keymeta document beside it (80 MB at 100,000 scopes). snapshot_rows holds the rows of
// row snapshots (EventStore.saveSnapshotRows): one row per key, the header in snapshots.
const SNAPSHOTS_V2 = `
CREATE TABLE IF NOT EXISTS snapshots (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot_rows (
  name TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  UNIQUE (name, key)
);
`;

// position is the rowid: AUTOINCREMENT so that a position is never handed out twice, even after
// the newest events were deleted; otherwise a subscriber past that position would miss the reuse.
// streams keeps one row per stream ever written, so that revisions continue after a delete.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  stream TEXT NOT NULL,
  revision INTEGER NOT NULL,
  event_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  metadata TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream, revision)
);
CREATE TABLE IF NOT EXISTS streams (
  name TEXT PRIMARY KEY,
  last_revision INTEGER NOT NULL,
  deleted INTEGER NOT NULL
) WITHOUT ROWID;
${SNAPSHOTS_V2}`;

/** Version 1 → 2: the snapshots table copied into its rowid form (snapshots are caches, but kept). */
const MIGRATE_1_TO_2 = `
ALTER TABLE snapshots RENAME TO snapshots_v1;
${SNAPSHOTS_V2}
INSERT INTO snapshots (name, position, state) SELECT name, position, state FROM snapshots_v1;
DROP TABLE snapshots_v1;
`;

function readUserVersion(db: Database.Database): number {
  return Number(db.pragma('user_version', { simple: true }));
}

function unsupportedSchema(version: number): KeyledgerError {
  return new KeyledgerError(
    'ERR_STORE',
    `the ledger database has schema version ${version}; this keyledger knows version ${SCHEMA_VERSION}`,
    { schemaVersion: version, supportedVersion: SCHEMA_VERSION },
  );
}

/** Creates the tables in a new file, migrates a version 1 file; a newer version is refused. */
export function migrate(db: Database.Database): void {
  if (readUserVersion(db) === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Checked again under the write lock: another process may have created the schema meanwhile.
    const version = readUserVersion(db);
    if (version === SCHEMA_VERSION) return;
    if (version === 1) db.exec(MIGRATE_1_TO_2);
    else if (version !== 0) throw unsupportedSchema(version);
    else db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
