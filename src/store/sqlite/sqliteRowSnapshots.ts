import type Database from 'better-sqlite3';
import { storeError } from '../adapterSupport.js';
import { SNAPSHOT_ROW_BATCH, type SnapshotRow, type SnapshotRowChange } from '../eventStore.js';
import type { SnapshotRowAt, SqliteStatements } from './sqliteStatements.js';

/**
 * Row snapshots on sqlite (EventStore.saveSnapshotRows): the header in `snapshots`, one
 * `snapshot_rows` row per key. A save is one IMMEDIATE transaction (the position check, the rows,
 * the header), so a reader sees the old snapshot or the new one, never a mix; rows are taken
 * from the iterable inside it, so a full save never holds every row in memory at once.
 */
export class SqliteRowSnapshots {
  readonly #statements: SqliteStatements;
  readonly #save: Database.Transaction<
    (
      name: string,
      position: bigint,
      state: string,
      rows: Iterable<SnapshotRowChange>,
      base: bigint | null,
    ) => boolean
  >;

  constructor(db: Database.Database, statements: SqliteStatements) {
    this.#statements = statements;
    this.#save = db.transaction((name, position, state, rows, base) => {
      const stored = statements.selectSnapshotPosition.get(name);
      if (base === null) {
        if (stored !== undefined && stored > position) return false;
        statements.deleteRows.run(name);
      } else if (stored !== base) return false;
      for (const row of rows) {
        if (row.value === null) statements.deleteRow.run(name, row.key);
        else statements.upsertRow.run(name, row.key, row.value);
      }
      statements.upsertSnapshot.run(name, position, state);
      return true;
    });
  }

  save(
    name: string,
    position: bigint,
    state: string,
    rows: Iterable<SnapshotRowChange>,
    base: bigint | null,
  ): boolean {
    return this.#save.immediate(name, position, state, rows, base);
  }

  /**
   * Pages of rows in table order. Each page is its own read: a save committed between two pages
   * may show (the caller checks what it read against the header's digest).
   */
  async *read(name: string, assertOpen: () => void): AsyncIterable<readonly SnapshotRow[]> {
    let after = 0;
    for (;;) {
      assertOpen();
      let page: SnapshotRowAt[];
      try {
        page = this.#statements.selectRowPage.all(after, name, SNAPSHOT_ROW_BATCH);
      } catch (error) {
        throw storeError(error, 'readSnapshotRows');
      }
      if (page.length === 0) return;
      after = (page.at(-1) as SnapshotRowAt).at;
      yield page;
    }
  }
}
