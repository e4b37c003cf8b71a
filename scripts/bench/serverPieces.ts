/**
 * Where an encrypt request's server CPU goes beyond resolve's, piece by piece, in one process
 * without sockets: each piece of the JSON bytes route timed alone (CPU per call, median of rounds),
 * next to Fastify `inject` of resolve, encrypt and the bare route, and the same pieces run right
 * after an injected resolve request (`inject resolve + <piece>`: minus `inject resolve` alone, the
 * piece's cost inside a server's flow rather than in a hot loop). Issue 12, fourth session
 * (BENCHMARKS.md).
 *
 *   node --import tsx scripts/bench/serverPieces.ts [perRound] [rounds]
 *   PIECES_ONLY='inject resolve,inject resolve + encryptBuffer,encryptBuffer 1 KiB' …  (some cases)
 */

import { createCipheriv, createHmac, hash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { EnvelopeStreams } from '../../src/crypto/envelopeStream.js';
import { encrypt } from '../../src/operations/cryptoOperations.js';
import { resolve } from '../../src/operations/queryOperations.js';
import { withData } from '../../src/server/bytesRoutes.js';
import { checkRequest, runChecked } from '../../src/server/runOperation.js';
import { ServerHost } from '../../src/server/serverHost.js';
import { openBenchServer } from './benchServer.js';

const [perRoundArg = '500', roundsArg = '15'] = process.argv.slice(2);
const perRound = Number(perRoundArg);
const rounds = Number(roundsArg);
const custodian = Buffer.from('tenant-1').toString('base64');
const namespace = 'orders';
const plain = Buffer.alloc(1024, 'p');
const key32 = randomBytes(32);
const plaintext = plain.toString('base64');
const encryptBody = JSON.stringify({ custodian, namespace: [namespace], data: plaintext });
const resolveBody = JSON.stringify({ custodian, namespace: [namespace] });

const bench = await openBenchServer('keyledger-bench-pieces-', { tls: null, consoleDir: null });
const { opened, server, issuer } = bench;
const storeAccess = bench.storeAccess.access;
await server.app.ready();
await opened.ledger.admin.enableKeyManagement(custodian, namespace);
const token = await issuer.sign('bench-app', [`admin:${custodian}`], {
  exp: Math.floor(Date.now() / 1000) + 3600,
});
const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
const principal = { name: 'bench-app', grants: [{ role: 'admin', custodians: '*' }] } as never;

const bare = Fastify({ logger: false });
const reply1KiB = Buffer.alloc(1024, 'k').toString();
bare.post('/bare', async (request, reply) => {
  if (typeof (request.body as { data?: unknown }).data !== 'string') reply.code(400);
  reply.header('content-type', 'application/json; charset=utf-8');
  return `{"data":"${reply1KiB}"}`;
});
await bare.ready();

const host = () =>
  new ServerHost({
    ledger: opened.ledger,
    storeAccess,
    principal,
    reason: undefined,
    requestId: 'r',
    signal: () => new AbortController().signal,
  });
const sink = () => {
  const chunks: Buffer[] = [];
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  });
};
const envelope = new EnvelopeStreams(opened.ledger.resolver);
const encryptFields = { custodian, namespace: [namespace] };
const checked = checkRequest(encrypt as never, encryptFields, principal);
const sampleResult = { custodian, namespace, keyId: 'k'.repeat(43), metadataHash: 'h'.repeat(43) };
const cipher = (await envelope.encryptBuffer(plain, { custodian, namespaces: [namespace] })).ciphertext;

const ok = (status: number, what: string) => {
  if (status !== 200) throw new Error(`${what}: ${status}`);
};
const cases: [string, () => unknown][] = [
  [
    'inject bare',
    async () =>
      ok(
        (await bare.inject({ method: 'POST', url: '/bare', headers, payload: encryptBody })).statusCode,
        'bare',
      ),
  ],
  [
    'inject resolve',
    async () =>
      ok(
        (await server.app.inject({ method: 'POST', url: '/v1/resolve', headers, payload: resolveBody }))
          .statusCode,
        'resolve',
      ),
  ],
  [
    'inject encrypt',
    async () =>
      ok(
        (await server.app.inject({ method: 'POST', url: '/v1/encrypt', headers, payload: encryptBody }))
          .statusCode,
        'encrypt',
      ),
  ],
  // The same work right after a resolve request (what runs between two encrypts in a server): the
  // difference from 'inject resolve' alone is the piece's cost in context.
  [
    'inject resolve + encryptBuffer',
    async () => {
      ok(
        (await server.app.inject({ method: 'POST', url: '/v1/resolve', headers, payload: resolveBody }))
          .statusCode,
        'resolve',
      );
      await envelope.encryptBuffer(plain, { custodian, namespaces: [namespace] });
    },
  ],
  [
    'inject resolve + runChecked encrypt',
    async () => {
      ok(
        (await server.app.inject({ method: 'POST', url: '/v1/resolve', headers, payload: resolveBody }))
          .statusCode,
        'resolve',
      );
      await runChecked(encrypt as never, checked, host(), { input: plain, output: sink() });
    },
  ],
  ...(
    [
      [
        '3 createHmac',
        () => {
          for (let i = 0; i < 3; i++) createHmac('sha256', key32).update(plain.subarray(0, 32)).digest();
        },
      ],
      [
        '1 crypto.hash',
        () => {
          hash('sha256', plain.subarray(0, 96), 'buffer');
        },
      ],
      [
        '1 crypto.hash hex',
        () => {
          hash('sha256', plain.subarray(0, 96), 'hex');
        },
      ],
      [
        '6 crypto.hash',
        () => {
          for (let i = 0; i < 6; i++) hash('sha256', plain.subarray(0, 96), 'buffer');
        },
      ],
      [
        'AES-256-GCM 1 KiB',
        () => {
          const cipher = createCipheriv('aes-256-gcm', key32, plain.subarray(0, 12));
          cipher.setAAD(plain.subarray(0, 61));
          cipher.update(plain);
          cipher.final();
          cipher.getAuthTag();
        },
      ],
      [
        '10 Buffer.alloc(32)',
        () => {
          for (let i = 0; i < 10; i++) Buffer.alloc(32);
        },
      ],
    ] as [string, () => void][]
  ).flatMap(([name, piece]): [string, () => unknown][] => [
    [name, piece],
    [
      `inject resolve + ${name}`,
      async () => {
        ok(
          (await server.app.inject({ method: 'POST', url: '/v1/resolve', headers, payload: resolveBody }))
            .statusCode,
          'resolve',
        );
        piece();
      },
    ],
  ]),
  ['JSON.parse encrypt body', () => JSON.parse(encryptBody)],
  ['JSON.parse resolve body', () => JSON.parse(resolveBody)],
  ['Buffer.from base64 1 KiB', () => Buffer.from(plaintext, 'base64')],
  [
    'checkRequest encrypt',
    () => checkRequest(encrypt as never, { custodian, namespace: [namespace] }, principal),
  ],
  [
    'checkRequest resolve',
    () => checkRequest(resolve as never, { custodian, namespace: [namespace] }, principal),
  ],
  ['encryptBuffer 1 KiB', () => envelope.encryptBuffer(plain, { custodian, namespaces: [namespace] })],
  [
    'resolver.resolveActive',
    () => opened.ledger.resolver.resolveActive(opened.ledger.resolver.target(custodian, [namespace])),
  ],
  [
    'runChecked encrypt (op.run, host, sink)',
    () => runChecked(encrypt as never, checked, host(), { input: plain, output: sink() }),
  ],
  [
    'runChecked resolve',
    () => runChecked(resolve as never, checkRequest(resolve as never, encryptFields, principal), host()),
  ],
  ['withData (base64 out + JSON)', () => withData(sampleResult, cipher)],
  ['ServerHost + Writable sink', () => [host(), sink()]],
];
const only = process.env.PIECES_ONLY;
if (only !== undefined)
  cases.splice(0, cases.length, ...cases.filter(([name]) => only.split(',').includes(name)));
const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let round = 0; round < rounds + 2; round++) {
  for (const [name, call] of cases) {
    const from = process.cpuUsage();
    for (let i = 0; i < perRound; i++) await call();
    const used = process.cpuUsage(from);
    if (round >= 2) samples.get(name)?.push((used.user + used.system) / perRound);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
console.log(`${rounds} rounds of ${perRound} calls per case; CPU µs per call, median (min)`);
for (const [name, values] of samples) {
  console.log(
    `${name.padEnd(40)} ${median(values).toFixed(1).padStart(7)} (${Math.min(...values).toFixed(1)})`,
  );
}
await bench.close();
process.exit(0);
