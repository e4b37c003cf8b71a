import type Database from 'better-sqlite3';
import { KeyledgerError } from '../../domain/errors.js';

/**
 * How long a statement waits for another process's write lock before failing with SQLITE_BUSY.
 * Appends hold the lock for a few statements only, so this is only reached if something is stuck.
 * Passed as the Database constructor's `timeout` option, which sets busy_timeout.
 */
export const BUSY_TIMEOUT_MS = 5000;

/** The connection's settings: WAL (several processes at once), durable commits, zeroed deletes. */
export function configureDatabase(db: Database.Database): void {
  // busy_timeout comes from the constructor's `timeout` option.
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') {
    throw new KeyledgerError('ERR_STORE', `sqlite refused WAL mode (journal_mode is ${String(mode)})`, {
      journalMode: String(mode),
    });
  }
  // A lost commit could be a key the ledger already handed out: every commit reaches the disk.
  db.pragma('synchronous = FULL');
  // Deleting a stream is crypto-shredding: freed cells and pages are zeroed, not left readable.
  db.pragma('secure_delete = ON');
}
