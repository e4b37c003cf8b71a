import { createRequire } from 'node:module';
import type * as EsdbClient from '@eventstore/db-client';

const require = createRequire(import.meta.url);
let loaded: typeof EsdbClient | null = null;

/**
 * `@eventstore/db-client` (and gRPC under it), loaded on first use: importing it costs ~0.3 s and
 * ~25 MB, which a sqlite ledger, the CLI's one-scope commands and a plain `import 'keyledger'`
 * should not pay. The package is CommonJS, so a synchronous require keeps the adapter's API
 * (`EsdbEventStore.open` and `openEventStore` stay synchronous).
 */
export function esdbClient(): typeof EsdbClient {
  loaded ??= require('@eventstore/db-client') as typeof EsdbClient;
  return loaded;
}
