import { once } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvelopeStreams } from '../crypto/envelopeStream.js';
import { KeyledgerError } from '../domain/errors.js';
import { parseCustodian, parseNamespace } from '../domain/identities.js';
import { MAX_CANDIDATES } from '../ledger/keyResolver.js';
import type { Ledger } from '../ledger/ledger.js';

/** The binary standard streams encrypt and decrypt read and write (main.ts: process.stdin/stdout). */
export interface CryptoIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
}

export interface EncryptArgs {
  readonly custodian: string;
  /** Candidate namespaces in order; none means ['*'] (as for `resolve`). */
  readonly namespaces: readonly string[];
  /** Associated data as text (its UTF-8 bytes); decrypt needs the same. */
  readonly aad?: string;
}

export interface DecryptArgs {
  readonly aad?: string;
}

/** What `prepare` returns for these commands: runs against the opened ledger. */
export type CryptoRunner = (ledger: Ledger) => Promise<void>;

/**
 * `keyledger encrypt <custodian> [--namespace <ns>]... [--aad <text>] < in > out`: stdin → stdout
 * in the envelope stream format (mode 2), in constant memory. Arguments are checked here, before
 * the ledger is opened (bad custodian or namespace: their codes, exit 2); the key is resolved
 * before the first byte of input is read (none ACTIVE: ERR_NO_ACTIVE_KEY, exit 1). Ciphertext is
 * never written to a terminal.
 */
export function encryptCommand(args: EncryptArgs, io: CryptoIo): CryptoRunner {
  const namespaces = args.namespaces.length > 0 ? [...args.namespaces] : ['*'];
  parseCustodian(args.custodian);
  for (const namespace of namespaces) parseNamespace(namespace);
  if (namespaces.length > MAX_CANDIDATES) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `give 1 to ${MAX_CANDIDATES} candidate namespaces`, {
      candidates: namespaces.length,
    });
  }
  if ((io.stdout as { isTTY?: boolean }).isTTY === true) {
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      'refusing to write ciphertext to a terminal; redirect stdout to a file or a pipe',
      {},
    );
  }
  const aad = aadBytes(args.aad);
  return async (ledger) => {
    const resolver = ledger.resolver;
    const target = resolver.target(args.custodian, namespaces);
    if ((await resolver.resolveActive(target)) === null) {
      throw new KeyledgerError(
        'ERR_NO_ACTIVE_KEY',
        `no candidate namespace has an ACTIVE key: ${namespaces.join(', ')}`,
        { custodian: args.custodian },
      );
    }
    const streams = new EnvelopeStreams(resolver);
    const encrypting = streams.encryptStream({
      custodian: args.custodian,
      namespaces,
      ...(aad === undefined ? {} : { aad }),
    });
    await pump(io, encrypting);
  };
}

/**
 * `keyledger decrypt [--aad <text>] < in > out`: stdin → stdout, constant memory. Any failure (wrong
 * AAD, tampering, truncation, garbage, a key the ledger may not use) is ERR_DECRYPTION_FAILED, exit 1.
 * Plaintext is written chunk by chunk, each only after its tag verified; on failure stdout may
 * already hold the verified chunks before the bad one (never any byte of an unverified chunk), so
 * a caller must treat the output as valid only when the exit status is 0.
 */
export function decryptCommand(args: DecryptArgs, io: CryptoIo): CryptoRunner {
  const aad = aadBytes(args.aad);
  return async (ledger) => {
    const streams = new EnvelopeStreams(ledger.resolver);
    await pump(io, streams.decryptStream(aad === undefined ? {} : { aad }));
  };
}

/**
 * stdin → `transform` → stdout with backpressure. stdout is written to but never ended or
 * destroyed: it is the process's, a failure is reported on stderr, and main.ts treats an error on
 * stdout other than EPIPE as fatal.
 */
async function pump(io: CryptoIo, transform: Duplex): Promise<void> {
  const stdout = io.stdout;
  await pipeline(io.stdin, transform, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      if (!stdout.write(chunk)) await once(stdout, 'drain');
    }
    // Everything written has been handed to the OS (or the test's sink) before we return.
    await new Promise<void>((resolve, reject) =>
      stdout.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve())),
    );
  });
}

function aadBytes(text: string | undefined): Buffer | undefined {
  return text === undefined ? undefined : Buffer.from(text, 'utf8');
}

/** The streams for encrypt/decrypt from the CLI's io, defaulting to the process's own. */
export function cryptoIoOf(io: { readonly stdin?: Readable; readonly stdoutStream?: Writable }): CryptoIo {
  return { stdin: io.stdin ?? process.stdin, stdout: io.stdoutStream ?? process.stdout };
}
