import { KeyledgerError } from '../domain/errors.js';
import {
  type EventStore,
  SNAPSHOT_ROW_BATCH,
  type Snapshot,
  type SnapshotRow,
  type SnapshotRowChange,
} from './eventStore.js';

/**
 * Row snapshots (EventStore.saveSnapshotRows) kept as one document beside the header: the rows
 * in the snapshot `<name>.rows` as `{ rows: { key: value } }`. The memory store has no file to
 * grow, and EventStoreDB has no table (a stream per row would make a whole read one call per
 * row), so both keep the document: a save costs the whole document there, which is the cost they
 * had before rows existed. The rows are saved first, then the header; a crash between leaves a
 * header the rows do not match, which the reader's digest check rejects (src/audit/snapshotRows.ts).
 * Not atomic across processes on EventStoreDB: two savers racing may mix, which the check rejects too.
 */
export class DocumentSnapshotRows {
  readonly #store: Pick<EventStore, 'loadSnapshot' | 'saveSnapshot'>;

  constructor(store: Pick<EventStore, 'loadSnapshot' | 'saveSnapshot'>) {
    this.#store = store;
  }

  async save(
    name: string,
    header: Snapshot,
    changes: Iterable<SnapshotRowChange>,
    base: bigint | null,
  ): Promise<boolean> {
    const stored = await this.#store.loadSnapshot(name);
    let rows: Record<string, string>;
    if (base === null) {
      if (stored !== null && stored.position > header.position) return false;
      rows = {};
    } else {
      if (stored?.position !== base) return false;
      rows = { ...(await this.#rows(name)) };
    }
    for (const change of changes) {
      if (change.value === null) delete rows[change.key];
      else rows[change.key] = change.value;
    }
    await this.#store.saveSnapshot(rowsName(name), { position: header.position, state: { rows } });
    await this.#store.saveSnapshot(name, header);
    return true;
  }

  async load(name: string, key: string): Promise<string | null> {
    const rows = await this.#rows(name);
    return Object.hasOwn(rows, key) ? (rows[key] as string) : null;
  }

  async *read(name: string): AsyncIterable<readonly SnapshotRow[]> {
    const rows = Object.entries(await this.#rows(name));
    for (let i = 0; i < rows.length; i += SNAPSHOT_ROW_BATCH) {
      yield rows.slice(i, i + SNAPSHOT_ROW_BATCH).map(([key, value]) => ({ key, value }));
    }
  }

  async #rows(name: string): Promise<Readonly<Record<string, string>>> {
    const document = await this.#store.loadSnapshot(rowsName(name));
    if (document === null) return {};
    const rows = (document.state as { rows?: unknown } | null)?.rows;
    if (typeof rows !== 'object' || rows === null || Array.isArray(rows)) {
      throw new KeyledgerError('ERR_STORE', `snapshot ${rowsName(name)} holds no rows`, {
        operation: 'readSnapshotRows',
      });
    }
    for (const value of Object.values(rows)) {
      if (typeof value !== 'string') {
        throw new KeyledgerError('ERR_STORE', `snapshot ${rowsName(name)} holds a row that is not text`, {
          operation: 'readSnapshotRows',
        });
      }
    }
    return rows as Record<string, string>;
  }
}

function rowsName(name: string): string {
  return `${name}.rows`;
}
