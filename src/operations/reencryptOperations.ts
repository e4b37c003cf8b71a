import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { LEGACY_ALGORITHMS } from '../crypto/legacyAesGcm.js';
import { KeyledgerError } from '../domain/errors.js';
import { LEGACY_CAMPAIGN_NAME } from '../domain/legacyReencryptionEventSchemas.js';
import { type ByteStreams, defineOperation } from './operation.js';
import { plain } from './plain.js';
import { invalidArgument } from './queryOperations.js';

/** A legacy file is authenticated whole (one GCM tag, at its end), so it is held in memory: this much. */
export const DEFAULT_LEGACY_MAX_BYTES = 64 * 1024 * 1024;
/** The most `--max-bytes` may allow (a Buffer's practical limit, with room for the output). */
export const MAX_LEGACY_MAX_BYTES = 1024 * 1024 * 1024;

/** The whole input, refused with ERR_PAYLOAD_TOO_LARGE past `limit` bytes (read no further). */
async function readBounded(input: Readable | Buffer, limit: number): Promise<Buffer> {
  if (Buffer.isBuffer(input)) {
    if (input.length > limit) throw tooLarge(limit);
    return input;
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) {
      for (const c of chunks) c.fill(0);
      throw tooLarge(limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

function tooLarge(limit: number): KeyledgerError {
  return new KeyledgerError(
    'ERR_PAYLOAD_TOO_LARGE',
    `a legacy file is authenticated whole and held in memory: this one is over ${limit} bytes (raise --max-bytes)`,
    { limitBytes: limit },
  );
}

/** Everything written to `output` has been handed on. */
function flushed(output: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    output.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve())),
  );
}

/**
 * `path` appears complete or not at all: written beside it under a temporary name, then renamed
 * over it (atomic within a file system). A failure removes the temporary file.
 */
async function writeWhole(path: string, bytes: Buffer): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`);
  try {
    await writeFile(temporary, bytes, { flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new KeyledgerError(
      'ERR_INVALID_ARGUMENT',
      `cannot write --out: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        out: path,
      },
    );
  }
}

function streamsOf(streams: ByteStreams | undefined): ByteStreams {
  if (streams === undefined) throw new TypeError('reencrypt streams its input and output');
  return streams;
}

export const reencrypt = defineOperation({
  name: 'reencrypt',
  summary: 're-encrypt a legacy file under an imported key into keyledger’s stream format',
  description:
    'Reads legacy data (--legacy aes-256-gcm: nonce(12) ‖ ciphertext ‖ tag(16)) encrypted under the key\nrecorded by import-managed-key with that metadata hash, and writes what `keyledger encrypt` would,\nunder the ACTIVE key of that key’s scope, bound to the same AAD. The whole input is authenticated\nbefore a byte is written (GCM’s one tag is at the end), so it is held in memory up to --max-bytes\n(default 64 MiB); nothing is written on any failure. Records nothing.',
  input: z.strictObject({
    legacy: z.enum(LEGACY_ALGORITHMS).describe('the legacy layout: aes-256-gcm (nonce ‖ ciphertext ‖ tag)'),
    key: z.string().min(1).describe('the metadata hash of the imported key the data is under'),
    aad: z.string().describe('associated data (UTF-8) the legacy data was encrypted with').optional(),
    aadFile: z.string().min(1).describe('a file holding the associated data (local CLI only)').optional(),
    out: z
      .string()
      .min(1)
      .describe('write to this file, which appears only once complete (local CLI only; default stdout)')
      .optional(),
    maxBytes: z
      .int()
      .min(1, '--max-bytes takes an integer ≥ 1')
      .max(MAX_LEGACY_MAX_BYTES, `--max-bytes takes at most ${MAX_LEGACY_MAX_BYTES}`)
      .describe('refuse input over this many bytes (default 67108864, 64 MiB)')
      .optional(),
  }),
  permission: 'decrypt',
  // The key's scope (and so the custodian) is known once the key is looked up: checked then.
  custodianOf: () => null,
  custodianFromContent: true,
  writes: false,
  kind: 'bytes',
  opens: 'ledger',
  cli: {
    placeholders: {
      legacy: 'layout',
      key: 'metadata-hash',
      aad: 'text',
      aadFile: 'file',
      out: 'file',
      maxBytes: 'n',
    },
  },
  prepare: (input) => {
    if (input.aad !== undefined && input.aadFile !== undefined) {
      throw invalidArgument('give --aad or --aad-file, not both');
    }
    return {
      legacy: input.legacy,
      key: input.key,
      aad: input.aad === undefined ? undefined : Buffer.from(input.aad, 'utf8'),
      aadFile: input.aadFile,
      out: input.out,
      maxBytes: input.maxBytes ?? DEFAULT_LEGACY_MAX_BYTES,
    };
  },
  async run({ key, aad, aadFile, out, maxBytes }, host, streams) {
    const { input, output } = streamsOf(streams);
    if (out !== undefined && host.local === null) {
      throw invalidArgument('--out writes a local file: read the result from the response instead');
    }
    if (out === undefined && (output as { isTTY?: boolean }).isTTY === true) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'refusing to write ciphertext to a terminal; redirect stdout to a file or a pipe',
        {},
      );
    }
    let associated = aad;
    if (aadFile !== undefined) {
      if (host.local === null) throw invalidArgument('--aad-file reads a local file: give --aad to a server');
      associated = await readFile(host.local.resolvePath(aadFile)).catch((error: NodeJS.ErrnoException) => {
        throw new KeyledgerError('ERR_INVALID_ARGUMENT', `cannot read --aad-file: ${error.code ?? 'error'}`, {
          aadFile,
        });
      });
    }
    const ledger = await host.ledger();
    const data = await readBounded(input, maxBytes);
    const authorize = host.authorize?.bind(host);
    const result = await ledger.legacyReencryption.reencryptData(key, data, {
      ...(associated === undefined ? {} : { aad: associated }),
      ...(authorize === undefined
        ? {}
        : {
            authorize: (custodian: string) => {
              authorize('decrypt', custodian);
              authorize('encrypt', custodian);
            },
          }),
    });
    // Only a whole, authenticated, re-encrypted result is written: in one piece, at the end.
    if (out !== undefined && host.local !== null) {
      await writeWhole(host.local.resolvePath(out), result.ciphertext);
    } else {
      output.write(result.ciphertext);
      await flushed(output);
    }
    return plain({ scope: result.scope, from: result.from, to: result.to, bytes: result.ciphertext.length });
  },
});

export const reencryptStatus = defineOperation({
  name: 'reencrypt-status',
  summary: 'legacy re-encryption campaigns (of records held elsewhere) and their progress',
  description:
    'Campaigns are run by the library (ledger.legacyReencryption, docs/migration.md): each shows where\nit would resume (after lastRecordId) and the ids of records that failed to authenticate.',
  input: z.strictObject({
    campaign: z.string().describe('only this campaign').optional(),
  }),
  permission: 'read',
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { command: 'reencrypt', selectedBy: 'status', placeholders: { campaign: 'name' } },
  prepare: (input) => {
    if (input.campaign !== undefined && !LEGACY_CAMPAIGN_NAME.test(input.campaign)) {
      throw invalidArgument('--campaign takes a campaign name (letters, digits, ., _, -)');
    }
    return input.campaign;
  },
  async run(campaign, host) {
    return plain(await (await host.ledger()).legacyReencryption.status(campaign));
  },
});

export const REENCRYPT_OPERATIONS = [reencrypt, reencryptStatus] as const;
