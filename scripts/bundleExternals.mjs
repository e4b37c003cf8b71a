/**
 * The packages an esbuild bundle of keyledger leaves as package imports at run time: native
 * bindings, and packages only `serve` or the EventStoreDB store load (already lazily). One list for
 * the shipped CLI (build-cli.mjs) and the service bench's server (bench/serverChildBundle.ts), so the
 * bench runs what users run.
 */
export const BUNDLE_EXTERNALS = [
  'better-sqlite3',
  'pkcs11js',
  '@eventstore/db-client',
  '@grpc/*',
  'fastify',
  '@fastify/*',
  'prom-client',
];
