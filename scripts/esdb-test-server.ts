/**
 * Runs the protocol-level EventStoreDB test server (test/esdb) on 127.0.0.1 until SIGINT/SIGTERM, for
 * a CLI session against `--store esdb://…` without a real server. The first stdout line is the
 * connection string.
 *
 *   npm run esdb:test-server -- [--port N] [--no-batch-append]
 */
import { parseArgs } from 'node:util';
import { startEsdbTestServer } from '../test/esdb/esdbTestServer.js';

function parsePort(value: string | undefined): number {
  if (value === undefined) return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer from 0 to 65535, got ${value}`);
    process.exit(2);
  }
  return port;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'no-batch-append': { type: 'boolean', default: false },
  },
  strict: true,
});

const server = await startEsdbTestServer({
  port: parsePort(values.port),
  batchAppend: !values['no-batch-append'],
});
console.log(server.connectionString);
console.error(
  `EventStoreDB test server listening on 127.0.0.1:${server.port} (BatchAppend ${values['no-batch-append'] ? 'off' : 'on'}); in-memory, stops on SIGINT/SIGTERM`,
);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.error(`${signal}: stopping the EventStoreDB test server`);
  server.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
