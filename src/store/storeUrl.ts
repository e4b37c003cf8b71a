import { resolve } from 'node:path';
import { KeyledgerError } from '../domain/errors.js';
import { parseEsdbConnectionString, redactConnectionString } from './esdb/connectionString.js';
import { EsdbEventStore } from './esdbEventStore.js';
import type { EventStore } from './eventStore.js';
import { MemoryEventStore } from './memoryEventStore.js';
import { SqliteEventStore } from './sqliteEventStore.js';

/** Where the ledger lives when nothing says otherwise: a file under the working directory. */
export const DEFAULT_STORE_URL = 'sqlite:.keyledger/ledger.db';

/** A store URL, understood. */
export type StoreLocation =
  | { readonly kind: 'memory' }
  /** `path` is absolute. */
  | { readonly kind: 'sqlite'; readonly path: string }
  /**
   * EventStoreDB / KurrentDB: `connectionString` is the URL as written (scheme lower-cased), handed
   * to the client; `redacted` is the same without `user:password@`, for messages.
   */
  | {
      readonly kind: 'esdb';
      readonly connectionString: string;
      readonly discover: boolean;
      readonly redacted: string;
    };

const EXPECTED = 'memory:, sqlite:<path>, esdb://host:port or esdb+discover://host:port';

/** The URL as it may be shown: an esdb URL's credentials are replaced by `***`. */
export function redactStoreUrl(url: string): string {
  return redactConnectionString(url);
}

function invalidUrl(message: string, scheme: string): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_STORE_URL', message, { scheme });
}

/**
 * Parses `memory:`, `sqlite:<path>` (a relative path is taken against the working directory),
 * `esdb://…` or `esdb+discover://…` (an EventStoreDB connection string, see docs/operations.md).
 * The scheme is case-insensitive, as in any URL; the rest is kept as written. Errors never quote
 * credentials.
 */
export function parseStoreUrl(url: string, cwd: string = process.cwd()): StoreLocation {
  const colon = url.indexOf(':');
  if (colon <= 0) {
    throw invalidUrl(
      `store URL ${JSON.stringify(redactStoreUrl(url))} has no scheme (expected ${EXPECTED})`,
      '',
    );
  }
  const scheme = url.slice(0, colon).toLowerCase();
  const rest = url.slice(colon + 1);
  switch (scheme) {
    case 'memory':
      if (rest !== '') throw invalidUrl('the memory: store URL takes nothing after the colon', scheme);
      return { kind: 'memory' };
    case 'sqlite':
      if (rest === '')
        throw invalidUrl('the sqlite: store URL needs a file path, as in sqlite:ledger.db', scheme);
      return { kind: 'sqlite', path: resolve(cwd, rest) };
    case 'esdb':
    case 'esdb+discover': {
      const connection = parseEsdbConnectionString(url);
      return {
        kind: 'esdb',
        connectionString: connection.connectionString,
        discover: connection.discover,
        redacted: connection.redacted,
      };
    }
    default:
      throw invalidUrl(`unknown store URL scheme ${JSON.stringify(scheme)} (expected ${EXPECTED})`, scheme);
  }
}

/**
 * Opens the event store a URL names; a relative sqlite path is taken against `cwd`. An esdb store
 * is not contacted here: its first call finds out whether the server answers (see EsdbEventStore).
 */
export function openEventStore(url: string, cwd: string = process.cwd()): EventStore {
  const location = parseStoreUrl(url, cwd);
  switch (location.kind) {
    case 'memory':
      return new MemoryEventStore();
    case 'sqlite':
      return SqliteEventStore.open(location.path);
    case 'esdb':
      return EsdbEventStore.open(location.connectionString);
    default: {
      const unexpected: never = location;
      throw new KeyledgerError('ERR_INVALID_STORE_URL', 'unexpected store kind', {
        kind: String((unexpected as { kind: unknown }).kind),
      });
    }
  }
}
