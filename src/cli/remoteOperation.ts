import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Observable } from 'rxjs';
import { KeyledgerClient } from '../client/keyledgerClient.js';
import { KeyledgerError } from '../domain/errors.js';
import type { BytesName, UnaryName } from '../operations/keyledgerApi.js';
import type { ByteStreams } from '../operations/operation.js';
import type { AnyOperation } from '../operations/operations.js';
import { usageError } from './commandLine.js';
import type { CliIo } from './output.js';
import type { GlobalValues } from './parseCommandLine.js';

/**
 * `--server`: the CLI runs the operation on a keyledger server through KeyledgerClient instead of on
 * a local ledger; parsing, views and exit codes stay the CLI's. The options come from the flags,
 * else from KEYLEDGER_SERVER, KEYLEDGER_TOKEN_FILE and KEYLEDGER_CA_FILE (empty counts as unset).
 */
export interface RemoteTarget {
  readonly client: KeyledgerClient;
}

/** What runs locally even with --server: it reads only a local file (docs/cli.md, "Remote"). */
const LOCAL_WITH_SERVER = new Set(['verify-export']);

function fromEnv(value: string | undefined, env: string | undefined): string | undefined {
  return value ?? (env === '' ? undefined : env);
}

function readFile(io: CliIo, file: string, what: string): Buffer {
  const path = resolve(io.cwd, file);
  try {
    return readFileSync(path);
  } catch (error) {
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      `cannot read the ${what} ${path}`,
      { file: path },
      { cause: error },
    );
  }
}

/**
 * A token file others can read gives them the token's grants: refused, as a keystore password file
 * is (POSIX modes only).
 */
function readPrivateFile(io: CliIo, file: string, what: string): Buffer {
  const bytes = readFile(io, file, what);
  if (process.platform === 'win32') return bytes;
  const path = resolve(io.cwd, file);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    const octal = `0${mode.toString(8).padStart(3, '0')}`;
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      `${what} ${path} is accessible by group or others (mode ${octal}); run chmod 600 on it`,
      { file: path, mode: octal },
    );
  }
  return bytes;
}

/**
 * The server to run `operation` on, or null to run it locally. Refuses what cannot mean anything
 * remotely: --actor (the server records the authenticated principal), --store (the server's store
 * is used), and the operations that write local files.
 */
export function remoteTargetOf(
  global: GlobalValues,
  operation: AnyOperation,
  io: CliIo,
): RemoteTarget | null {
  const url = fromEnv(global.server, io.env.KEYLEDGER_SERVER);
  if (url === undefined || LOCAL_WITH_SERVER.has(operation.name)) return null;
  if (global.actor !== undefined) {
    throw usageError('--actor cannot be used with --server: the server records the authenticated principal');
  }
  if (global.store !== undefined) {
    throw usageError('--store cannot be used with --server: the server uses its own store');
  }
  if (operation.name === 'init') {
    throw usageError('init sets up a local ledger; run it where the server runs, not with --server');
  }
  if (operation.name === 'audit-export-file') {
    throw usageError(
      'audit export --out writes a local file; with --server use: keyledger audit export > <file>',
    );
  }
  const tokenFile = fromEnv(global.tokenFile, io.env.KEYLEDGER_TOKEN_FILE);
  const caFile = fromEnv(global.caFile, io.env.KEYLEDGER_CA_FILE);
  // A file ends in a newline more often than not; the token is what precedes it.
  const token =
    tokenFile === undefined
      ? undefined
      : readPrivateFile(io, tokenFile, 'token file').toString('utf8').trim();
  const ca = caFile === undefined ? undefined : readFile(io, caFile, 'CA file');
  return {
    client: new KeyledgerClient({
      url,
      ...(token === undefined ? {} : { token }),
      ...(ca === undefined ? {} : { ca }),
    }),
  };
}

/** Runs the operation on the server: what `operation.run` would have answered locally. */
export function runRemote(
  client: KeyledgerClient,
  operation: AnyOperation,
  input: Record<string, unknown>,
  reason: string | undefined,
  streams: ByteStreams | undefined,
): Promise<unknown> | Observable<unknown> {
  const options = reason === undefined ? {} : { reason };
  switch (operation.kind) {
    case 'unary':
      return client.call(operation.name as UnaryName, input as never, options);
    case 'events':
      return client.events$(input);
    case 'bytes':
      return bytes(client, operation.name as BytesName, input, options, streams);
    default: {
      const unreachable: never = operation.kind;
      return unreachable;
    }
  }
}

async function bytes(
  client: KeyledgerClient,
  name: BytesName,
  input: Record<string, unknown>,
  options: { reason?: string },
  streams: ByteStreams | undefined,
): Promise<unknown> {
  if (streams === undefined) throw new TypeError(`${name} streams its input and output`);
  if (name === 'encrypt' && (streams.output as { isTTY?: boolean }).isTTY === true) {
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      'refusing to write ciphertext to a terminal; redirect stdout to a file or a pipe',
      {},
    );
  }
  const transfer = client.stream(name, input as never, options);
  // audit-export reads no input: stdin is left alone.
  const source =
    name === 'audit-export'
      ? Readable.from([])
      : Buffer.isBuffer(streams.input)
        ? Readable.from([streams.input])
        : streams.input;
  const piped = pipeline(source, transfer.stream, (chunks: AsyncIterable<Buffer>) =>
    into(chunks, streams.output),
  );
  // The result decides (a stream cut before its result is a failure whatever was written), and
  // its error is the one to report: the stream fails with it or with a consequence of it.
  const [result, written] = await Promise.allSettled([transfer.result, piped]);
  if (result.status === 'rejected') throw result.reason;
  if (written.status === 'rejected') throw written.reason;
  return result.value;
}

/** Writes to stdout with backpressure, never ending it (the process's own stream). */
async function into(chunks: AsyncIterable<Buffer>, output: Writable): Promise<void> {
  for await (const chunk of chunks) {
    if (!output.write(chunk)) await once(output, 'drain');
  }
  await new Promise<void>((done, fail) => output.write(Buffer.alloc(0), (e) => (e ? fail(e) : done())));
}
