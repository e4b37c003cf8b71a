import { resolve } from 'node:path';
import { KeyledgerError } from '../domain/errors.js';
import type { EventStore } from './eventStore.js';
import { MemoryEventStore } from './memoryEventStore.js';
import { SqliteEventStore } from './sqliteEventStore.js';

/** Where the ledger lives when nothing says otherwise: a file under the working directory. */
export const DEFAULT_STORE_URL = 'sqlite:.keyledger/ledger.db';

/** A store URL, understood. */
export type StoreLocation =
  | { readonly kind: 'memory' }
  /** `path` is absolute. */
  | { readonly kind: 'sqlite'; readonly path: string };
// The esdb adapter adds its kind here (e.g. { kind: 'esdb'; connectionString: string }).

function invalidUrl(message: string, scheme: string): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_STORE_URL', message, { scheme });
}

/**
 * Parses `memory:` or `sqlite:<path>` (a relative path is taken against the working directory).
 * The scheme is case-insensitive, as in any URL; the rest is kept as written.
 */
export function parseStoreUrl(url: string, cwd: string = process.cwd()): StoreLocation {
  const colon = url.indexOf(':');
  if (colon <= 0) {
    throw invalidUrl(
      `store URL ${JSON.stringify(url)} has no scheme (expected memory: or sqlite:<path>)`,
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
    // case 'esdb': the EventStoreDB adapter goes here.
    default:
      throw invalidUrl(
        `unknown store URL scheme ${JSON.stringify(scheme)} (expected memory: or sqlite:)`,
        scheme,
      );
  }
}

/** Opens the event store a URL names; a relative sqlite path is taken against `cwd`. */
export function openEventStore(url: string, cwd: string = process.cwd()): EventStore {
  const location = parseStoreUrl(url, cwd);
  switch (location.kind) {
    case 'memory':
      return new MemoryEventStore();
    case 'sqlite':
      return SqliteEventStore.open(location.path);
    default: {
      const unexpected: never = location;
      throw new KeyledgerError('ERR_INVALID_STORE_URL', 'unexpected store kind', {
        kind: String((unexpected as { kind: unknown }).kind),
      });
    }
  }
}
