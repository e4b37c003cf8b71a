import { once } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { ActiveResolution } from '../crypto/keySource.js';
import { KeyledgerError } from '../domain/errors.js';
import { custodianField, parseCustodianArg } from './identityArgs.js';
import { type ByteStreams, defineOperation } from './operation.js';
import { candidates, invalidArgument } from './queryOperations.js';

const aadField = z
  .string()
  .describe('associated data (UTF-8): authenticated, not stored; decrypt needs the same');

function aadBytes(text: string | undefined): Buffer | undefined {
  return text === undefined ? undefined : Buffer.from(text, 'utf8');
}

/**
 * input → `transform` → output with backpressure. The output is written to but never ended or
 * destroyed: on the CLI it is the process's stdout, and a failure is reported on stderr.
 */
async function pump(input: Readable, output: Writable, transform: Duplex): Promise<void> {
  // (A whole input in memory never comes here: encrypt and decrypt take it in one piece.)
  await pipeline(input, transform, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      if (!output.write(chunk)) await once(output, 'drain');
    }
    await flushed(output);
  });
}

function streamsOf(streams: ByteStreams | undefined): ByteStreams {
  if (streams === undefined) throw new TypeError('encrypt and decrypt stream their input and output');
  return streams;
}

/** Everything written to `output` has been handed on. */
function flushed(output: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    output.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve())),
  );
}

export const encrypt = defineOperation({
  name: 'encrypt',
  summary: 'encrypt a byte stream (stream format) with the key resolve would pick',
  description:
    'The key is resolved before the first byte of input is read. Never writes ciphertext to a terminal.',
  input: z.strictObject({
    custodian: custodianField,
    namespace: z
      .array(z.string())
      .describe('a candidate namespace, tried in order (repeatable; default *)')
      .optional(),
    aad: aadField.optional(),
  }),
  permission: 'encrypt',
  custodianOf: (input) => parseCustodianArg(input.custodian),
  writes: false,
  kind: 'bytes',
  opens: 'ledger',
  cli: { positionals: ['custodian'], placeholders: { namespace: 'ns', aad: 'text' } },
  prepare: (input) => ({
    custodian: parseCustodianArg(input.custodian),
    namespaces: candidates(input.namespace),
    aad: aadBytes(input.aad),
  }),
  async run({ custodian, namespaces, aad }, host, streams) {
    if ((streams?.output as { isTTY?: boolean } | undefined)?.isTTY === true) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'refusing to write ciphertext to a terminal; redirect stdout to a file or a pipe',
        {},
      );
    }
    const { envelopeStreams, resolver } = await host.ledger();
    const { input, output } = streamsOf(streams);
    if (Buffer.isBuffer(input)) {
      const { ciphertext, resolution } = await envelopeStreams.encryptBuffer(input, {
        custodian,
        namespaces,
        ...(aad === undefined ? {} : { aad }),
      });
      output.write(ciphertext);
      await flushed(output);
      return keyOf(resolution);
    }
    const r = await resolver.resolveActive(resolver.target(custodian, namespaces));
    if (r === null) {
      throw new KeyledgerError(
        'ERR_NO_ACTIVE_KEY',
        `no candidate namespace has an ACTIVE key: ${namespaces.join(', ')}`,
        {
          custodian,
        },
      );
    }
    const encrypting = envelopeStreams.encryptStream({
      custodian,
      namespaces,
      ...(aad === undefined ? {} : { aad }),
    });
    await pump(input, output, encrypting);
    return keyOf(r);
  },
});

function keyOf(r: ActiveResolution) {
  return {
    custodian: r.scope.custodian,
    namespace: r.scope.namespace,
    keyId: r.key.keyId,
    metadataHash: r.key.metadataHash,
  };
}

export const decrypt = defineOperation({
  name: 'decrypt',
  summary: 'decrypt a byte stream; any failure is ERR_DECRYPTION_FAILED',
  description:
    'Output is written chunk by chunk after each chunk’s tag verified: it is complete and valid only when\nthe command exits 0. With --custodian (and --namespace), a ciphertext under any other scope’s key\nfails the same way: a service decrypting for a tenant names the tenant it decrypts for.',
  input: z.strictObject({
    custodian: custodianField.describe('the custodian the ciphertext must be under').optional(),
    namespace: z
      .array(z.string())
      .describe('a namespace the ciphertext may be under (repeatable; needs --custodian)')
      .optional(),
    aad: aadField.optional(),
  }),
  permission: 'decrypt',
  custodianOf: (input) => (input.custodian === undefined ? null : parseCustodianArg(input.custodian)),
  custodianFromContent: true,
  writes: false,
  kind: 'bytes',
  opens: 'ledger',
  cli: { placeholders: { custodian: 'custodian', namespace: 'ns', aad: 'text' } },
  prepare: (input) => {
    if (input.custodian === undefined && input.namespace !== undefined) {
      throw invalidArgument('--namespace needs --custodian: the namespaces are the expected custodian’s');
    }
    return {
      expected:
        input.custodian === undefined
          ? {}
          : {
              custodian: parseCustodianArg(input.custodian),
              ...(input.namespace === undefined ? {} : { namespaces: candidates(input.namespace) }),
            },
      aad: aadBytes(input.aad),
    };
  },
  async run({ expected, aad }, host, streams) {
    const ledger = await host.ledger();
    const authorize = host.authorize?.bind(host);
    const options = {
      ...expected,
      ...(aad === undefined ? {} : { aad }),
      // The header names the custodian: the caller's grant on it is checked before its key is used.
      ...(authorize === undefined
        ? {}
        : { authorize: (custodian: string) => authorize('decrypt', custodian) }),
    };
    const { input, output } = streamsOf(streams);
    if (Buffer.isBuffer(input)) {
      // A whole input (the HTTP API's JSON form): opened at once, the plaintext written once it all verified.
      const { plaintext, keyInfo } = await ledger.envelopeStreams.decryptBuffer(input, options);
      output.write(plaintext);
      await flushed(output);
      return keyInfo;
    }
    const decrypting = ledger.envelopeStreams.decryptStream(options);
    await pump(input, output, decrypting);
    // The scope and key it was under: what a caller serving several tenants checks and logs.
    return decrypting.keyInfo;
  },
});

export const CRYPTO_OPERATIONS = [encrypt, decrypt] as const;
