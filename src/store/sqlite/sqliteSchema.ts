import type Database from 'better-sqlite3';
import { KeyledgerError } from '../../domain/errors.js';

/** Bump with a migration whenever the tables change; a file from a newer keyledger is refused. */
const SCHEMA_VERSION = 1;

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
CREATE TABLE IF NOT EXISTS snapshots (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  state TEXT NOT NULL
) WITHOUT ROWID;
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

/** Creates the tables in a new file; a file of another schema version is refused. */
export function migrate(db: Database.Database): void {
  if (readUserVersion(db) === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Checked again under the write lock: another process may have created the schema meanwhile.
    const version = readUserVersion(db);
    if (version === SCHEMA_VERSION) return;
    if (version !== 0) throw unsupportedSchema(version);
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
