/**
 * The server process of the service bench (server.ts): the keyledger server on a ledger made by
 * `init` in a temp dir (sqlite store, generated provider), and, in the same process with the same
 * certificate and key, a bare Fastify HTTPS route that parses the same JSON body and answers a fixed
 * 1 KiB without doing anything (the framework's limit), and a bare streamed route that echoes an
 * octet-stream body back as it arrives. Its own process so that its RSS is the
 * server's alone, and so that the load client does not share its event loop.
 *
 * Auth: JWTs from a test issuer (its JWKS in a file) and API tokens; no client certificates asked
 * (neither server requests one, so the TLS handshakes match). Rate limit raised out of the way, the
 * access log a no-op (the bare route has none either).
 *
 * stdout, one JSON line each; stdin, one command a line:
 *   (at start)         → {"ready": {url, bareUrl, bareStreamUrl, bareBusyUrl, bareTurnUrl, ca, admin, encryptor, auditor, custodian, namespace}}
 *   rss-start          → {"rss": <now>} and starts sampling rss every 5 ms
 *   rss-stop           → {"before": n, "peak": n}
 *   cpu-start          → {"cpu": "started"}
 *   cpu-stop           → {"micros": n}: the process's CPU time (user + system) since cpu-start
 *   profile-start      → {"profile": "started"}: a CPU profile (node:inspector, 100 µs sampling)
 *   profile-stop <file> → {"profile": file}: the profile written as a .cpuprofile
 *   inprocess <bytes>  → {"seconds": s, "outBytes": n, "before": n, "peak": n}: the same lazily
 *                        generated input through ledger.envelopeStreams.encryptStream into a sink
 *   exit
 */

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createInterface } from 'node:readline';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Fastify from 'fastify';
import { nextTurn } from '../../src/server/nextTurn.js';
import { makeTestCertificates } from '../../test/helpers/testCertificates.js';
import { openBenchServer } from './benchServer.js';
import { lazyInput } from './lazyInput.js';
import { RssSampler } from './rssSampler.js';

const custodian = Buffer.from('tenant-1').toString('base64');
const namespace = 'orders';
const send = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

const certs = makeTestCertificates();
const cert = certs.pem(certs.serverCert);
const key = certs.pem(certs.serverKey);
const bench = await openBenchServer('keyledger-bench-server-', { tls: { cert, key } });
const { opened, server, issuer } = bench;
const url = await server.listen('127.0.0.1', 0);

const reply1KiB = Buffer.alloc(1024, 'k').toString();
const bare = Fastify({ https: { cert, key }, logger: false });
bare.post('/bare', async (request, reply) => {
  // Touch the parsed body as the real route does, then answer a fixed 1 KiB.
  if (typeof (request.body as { data?: unknown }).data !== 'string') reply.code(400);
  reply.header('content-type', 'application/json; charset=utf-8');
  return `{"data":"${reply1KiB}"}`;
});
// The calibration route: the bare route plus a busy wait of `x-busy-us` microseconds of CPU, to
// see what a given amount of per-request work costs in requests/s on this machine (the bound).
bare.post('/bare-busy', async (request, reply) => {
  if (typeof (request.body as { data?: unknown }).data !== 'string') reply.code(400);
  const until = performance.now() + Number(request.headers['x-busy-us'] ?? 0) / 1000;
  while (performance.now() < until) {
    // spin
  }
  reply.header('content-type', 'application/json; charset=utf-8');
  return `{"data":"${reply1KiB}"}`;
});
// The bare route with the API routes' one wait for the end of the event-loop turn (nextTurn.ts): what
// running a turn's requests together does for a route that does nothing (a calibration, not the target's
// baseline, which stays the plain bare route).
bare.post('/bare-turn', async (request, reply) => {
  if (typeof (request.body as { data?: unknown }).data !== 'string') reply.code(400);
  await nextTurn();
  reply.header('content-type', 'application/json; charset=utf-8');
  return `{"data":"${reply1KiB}"}`;
});
// The streamed baseline: the body echoed back as it arrives (HTTPS and HTTP plumbing, no crypto).
bare.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
bare.post('/bare-stream', async (request, reply) => {
  reply.header('content-type', 'application/octet-stream');
  return reply.send(request.body as Readable);
});
await bare.listen({ host: '127.0.0.1', port: 0 });
const bareAddress = bare.server.address();
const barePort = typeof bareAddress === 'object' && bareAddress !== null ? bareAddress.port : 0;

// A long-lived JWT (made once), an admin one for setup and rotations, and the scope the load uses.
const hours = { exp: Math.floor(Date.now() / 1000) + 3600 * 4 };
const admin = await issuer.sign('bench-admin', ['admin:*'], hours);
const encryptor = await issuer.sign('bench-app', [`admin:${custodian}`], hours);
const auditor = await issuer.sign('bench-auditor', ['audit:*'], hours);
await opened.ledger.admin.enableKeyManagement(custodian, namespace);

send({
  ready: {
    url,
    bareUrl: `https://127.0.0.1:${barePort}/bare`,
    bareStreamUrl: `https://127.0.0.1:${barePort}/bare-stream`,
    bareBusyUrl: `https://127.0.0.1:${barePort}/bare-busy`,
    bareTurnUrl: `https://127.0.0.1:${barePort}/bare-turn`,
    ca: certs.pem(certs.caCert).toString(),
    admin,
    encryptor,
    auditor,
    custodian,
    namespace,
  },
});

let sampler: RssSampler | null = null;
let cpuFrom: NodeJS.CpuUsage | null = null;
let profiler: Session | null = null;
for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(' ');
  if (command === 'rss-start') {
    sampler = new RssSampler(5);
    send({ rss: sampler.before });
  } else if (command === 'rss-stop') {
    const stopped = sampler?.stop();
    sampler = null;
    send(stopped ?? { error: 'not sampling' });
  } else if (command === 'cpu-start') {
    cpuFrom = process.cpuUsage();
    send({ cpu: 'started' });
  } else if (command === 'cpu-stop') {
    // The server process's CPU time (user + system, all threads) since cpu-start: per request it
    // is what the server spends whatever the load generator next to it takes.
    const used = process.cpuUsage(cpuFrom ?? undefined);
    cpuFrom = null;
    send({ micros: used.user + used.system });
  } else if (command === 'profile-start') {
    // A CPU profile of the server process alone (node:inspector), for finding where a request's time goes.
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
    await profiler.post('Profiler.start');
    send({ profile: 'started' });
  } else if (command === 'profile-stop') {
    const taken = await profiler?.post('Profiler.stop');
    profiler?.disconnect();
    profiler = null;
    if (taken !== undefined && arg !== undefined) writeFileSync(arg, JSON.stringify(taken.profile));
    send({ profile: arg ?? null });
  } else if (command === 'inprocess') {
    const total = Number(arg);
    const rss = new RssSampler(5);
    let outBytes = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        outBytes += chunk.length;
        callback();
      },
    });
    const started = process.hrtime.bigint();
    await pipeline(
      lazyInput(total),
      opened.ledger.envelopeStreams.encryptStream({ custodian, namespaces: [namespace] }),
      sink,
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    send({ seconds, outBytes, ...rss.stop() });
  } else if (command === 'exit') {
    break;
  }
}

await bench.close();
await bare.close();
certs.remove();
process.exit(0);
