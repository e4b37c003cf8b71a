import assert from 'node:assert/strict';
import { createServer } from 'node:net';

/** A loopback port nothing listens on: bound by the OS, then released (for "server unreachable"). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}
