/**
 * (h) The service (issue 12, "Measure"): the keyledger server over HTTPS on one Ledger, measured
 * from a client process against baselines measured in the same run.
 *
 * The server runs in its own process (serverChild.ts: a ledger made by `init`, sqlite store,
 * generated provider; JWT auth from a local JWKS; TLS from a test CA), next to a bare Fastify HTTPS
 * route in that same process with the same certificate, which parses the same JSON body and answers
 * a fixed 1 KiB: the framework's limit. This process is the client.
 *
 * 1. Streamed encrypt, 64 MiB (`POST /v1/encrypt?custodian=…&namespace=…`, octet-stream, chunked):
 *    MB/s against the in-process `ledger.envelopeStreams.encryptStream` in the server process (the
 *    same lazily generated input, piped into a sink), and the server process's peak RSS growth
 *    while it served the body (sampled every 5 ms), after an 8 MiB warm-up of each. A second baseline:
 *    the bare Fastify route echoing the same body back (what HTTPS and HTTP cost, both ways).
 * 2. Rotation → delivery: 100 subscribers on `GET /v1/events` (audit:* JWT), ~50 rotations
 *    (`POST /v1/rotate-managed-key`), one at a time: the time from the POST's start to each
 *    subscriber receiving the event; p50/p99 over all (rotation, subscriber) pairs, and per rotation
 *    the first and the last subscriber reached (the spread is the fan-out's cost).
 * 3. autocannon, keep-alive, 64 connections, a warm-up then SECONDS measured per route: the bare
 *    route (before and after the rest: the baseline is their mean, and the two show the drift of a
 *    shared machine), `POST /v1/encrypt` of 1 KiB in the JSON form (a long-lived JWT; and again with
 *    an API token, which costs no signature check), `POST /v1/decrypt` of that ciphertext, and
 *    `POST /v1/resolve`. Requests/s and p50/p99 latency; ratios against the bare route. Then the
 *    same routes in ROUNDS short interleaved rounds, each route's slot between two bare slots
 *    (ratioRounds.ts): the median of the per-round ratios and their range, the steadier figure.
 *
 * The client and the server share the machine: on 2 cores, the load generator takes CPU the server
 * would otherwise have, for the bare route as for the real ones.
 */
import { loadavg } from 'node:os';
import { httpsCall } from '../../test/helpers/httpsCall.js';
import { type BenchResult, fmtMs, machineInfo, main, median, quantile, type Row } from './common.js';
import { httpLoad, type LoadResult } from './httpLoad.js';
import { type RoundFigures, ratioRounds } from './ratioRounds.js';
import { rotationDelivery } from './rotationDelivery.js';
import { ServerChildProcess, serverChildRunner } from './serverChildProcess.js';
import { streamedUpload } from './streamedUpload.js';

const MiB = 1024 * 1024;
const STREAM_BYTES = Number(process.env.BENCH_SERVER_STREAM_BYTES ?? 64 * MiB);
const STREAM_WARMUP_BYTES = 8 * MiB;
const SECONDS = Number(process.env.BENCH_SERVER_SECONDS ?? 5);
const WARMUP_SECONDS = 1;
/** The interleaved rounds (ratioRounds.ts): how many, and the seconds of each slot (no warm-up each). */
const ROUNDS = Number(process.env.BENCH_SERVER_ROUNDS ?? 5);
const ROUND_SECONDS = Number(process.env.BENCH_SERVER_ROUND_SECONDS ?? 2);
const CONNECTIONS = 64;
const SUBSCRIBERS = 100;
const ROTATIONS = Number(process.env.BENCH_SERVER_ROTATIONS ?? 50);
const ROTATION_WARMUP = 5;
/** The targets. */
const TARGET_RATIO = 0.5;
const TARGET_DELIVERY_P99_MS = 50;
/** `unary`: only the unary load (part 3), for repeated runs of the ratio; default: everything. */
const ONLY = process.env.BENCH_SERVER_ONLY ?? 'all';
/**
 * Busy waits (µs, comma-separated) to add to the bare route, each measured like a route: what a
 * given amount of server work per request costs in requests/s here (the bound). Default: none.
 */
const CALIBRATE = (process.env.BENCH_SERVER_CALIBRATE ?? '')
  .split(',')
  .filter((n) => n.trim() !== '')
  .map(Number);

function fmtMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

function fmtMBps(bytes: number, seconds: number): string {
  return `${(bytes / 1e6 / seconds).toFixed(0)} MB/s`;
}

function fmtLoad(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
}

/** A load run and the server process's CPU time per answered request (user + system, all threads). */
interface Measured extends LoadResult {
  readonly cpuMicros: number;
}

/** A route's interleaved-rounds figures: the median req/s ratio to bare (the target's), with its range. */
function inRounds(metric: string, f: RoundFigures, target: boolean): Row {
  const ratio = median([...f.ratios]);
  const range = (v: readonly number[]) => `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}`;
  return {
    metric: `interleaved rounds: ${metric}, median of ${f.ratios.length} per-round ratios`,
    value: `${ratio.toFixed(2)}× bare (rounds ${range(f.ratios)}; per round ${f.ratios.map((r) => r.toFixed(2)).join(' ')}); bare's server CPU ÷ the route's ${median([...f.cpuRatios]).toFixed(2)}× (${range(f.cpuRatios)}), the route ${median([...f.cpuMicros]).toFixed(0)} µs/request`,
    ...(target ? { target: `≥ ${TARGET_RATIO}× bare`, met: ratio >= TARGET_RATIO } : {}),
  };
}

function fmtRun(r: LoadResult): string {
  return `${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms`;
}

export async function run(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const rows: Row[] = [];
  const notes: string[] = [`load average (1, 5, 15 min) at start: ${fmtLoad()}`];
  const runner = serverChildRunner();
  notes.push(
    runner === 'bundle'
      ? 'server process: an esbuild bundle of serverChild.ts and the sources (dist/bench/serverChild.mjs, built as scripts/build-cli.mjs builds the shipped CLI); BENCH_SERVER_RUN=tsx runs the sources through tsx instead'
      : 'server process: the TypeScript sources through tsx (BENCH_SERVER_RUN=tsx; tsx keeps names: a __name call on every closure made)',
  );
  const { child, setup } = await ServerChildProcess.start(runner);
  const ca = Buffer.from(setup.ca);
  const call = (path: string, token: string, json: unknown) =>
    httpsCall(setup.url, 'POST', path, { ca, token, json });
  try {
    if (ONLY !== 'unary') {
      // 1. Streamed encrypt through the API against the in-process stream, and the server's RSS.
      const streamUrl = `${setup.url}/v1/encrypt?custodian=${encodeURIComponent(setup.custodian)}&namespace=${setup.namespace}`;
      const upload = (total: number) => streamedUpload(streamUrl, { ca, token: setup.encryptor, total });
      await upload(STREAM_WARMUP_BYTES);
      await streamedUpload(setup.bareStreamUrl, { ca, token: setup.encryptor, total: STREAM_WARMUP_BYTES });
      await child.ask(`inprocess ${STREAM_WARMUP_BYTES}`);
      await child.ask('rss-start');
      const api = await upload(STREAM_BYTES);
      const apiRss = await child.ask<{ before: number; peak: number }>('rss-stop');
      if (api.status !== 200 || api.result === undefined) {
        throw new Error(`streamed encrypt: status ${api.status}, trailer ${api.result ?? 'missing'}`);
      }
      const echo = await streamedUpload(setup.bareStreamUrl, {
        ca,
        token: setup.encryptor,
        total: STREAM_BYTES,
      });
      if (echo.status !== 200 || echo.outBytes !== STREAM_BYTES) {
        throw new Error(`bare echo: status ${echo.status}, ${echo.outBytes} bytes back`);
      }
      const local = await child.ask<{ seconds: number; outBytes: number; before: number; peak: number }>(
        `inprocess ${STREAM_BYTES}`,
      );
      if (local.outBytes !== api.outBytes) {
        throw new Error(`ciphertext sizes differ: API ${api.outBytes}, in-process ${local.outBytes}`);
      }
      rows.push(
        {
          metric: `streamed encrypt through the API, ${fmtMiB(STREAM_BYTES)}`,
          value: `${fmtMBps(STREAM_BYTES, api.seconds)} (${api.seconds.toFixed(2)} s); ${(local.seconds / api.seconds).toFixed(2)}× in-process`,
        },
        {
          metric: `baseline: in-process encryptStream in the server process, ${fmtMiB(STREAM_BYTES)}`,
          value: `${fmtMBps(STREAM_BYTES, local.seconds)} (${local.seconds.toFixed(2)} s)`,
        },
        {
          metric: `baseline: bare Fastify HTTPS echo of an octet-stream body, ${fmtMiB(STREAM_BYTES)}`,
          value: `${fmtMBps(STREAM_BYTES, echo.seconds)} (${echo.seconds.toFixed(2)} s); the API is ${(echo.seconds / api.seconds).toFixed(2)}× this`,
        },
        {
          metric: `server peak RSS growth while serving ${fmtMiB(STREAM_BYTES)}`,
          value: `+${fmtMiB(apiRss.peak - apiRss.before)} (${fmtMiB(apiRss.before)} → peak ${fmtMiB(apiRss.peak)})`,
          // The body must not be held: growth well under its size (a few chunks and buffers).
          target: `< ${fmtMiB(STREAM_BYTES / 4)} (¼ of the body)`,
          met: apiRss.peak - apiRss.before < STREAM_BYTES / 4,
        },
        {
          metric: `in-process peak RSS growth, ${fmtMiB(STREAM_BYTES)}`,
          value: `+${fmtMiB(local.peak - local.before)}`,
        },
      );

      // 2. Rotation → delivery to SUBSCRIBERS event streams.
      const scope = `${setup.custodian}:rotations`;
      const enabled = await call('/v1/enable-key-management', setup.admin, { scope });
      if (enabled.status !== 200) throw new Error(`enable-key-management: ${enabled.text}`);
      const delivery = await rotationDelivery({
        url: setup.url,
        ca,
        operator: setup.admin,
        auditor: setup.auditor,
        scope,
        subscribers: SUBSCRIBERS,
        warmup: ROTATION_WARMUP,
        rotations: ROTATIONS,
      });
      const lost = delivery.latenciesMs.filter((ms) => Number.isNaN(ms)).length;
      if (lost > 0) throw new Error(`${lost} deliveries without an arrival time`);
      const p99 = quantile(delivery.latenciesMs, 0.99);
      rows.push(
        {
          metric: `rotation → ${SUBSCRIBERS} SSE subscribers, ${ROTATIONS} rotations: p50`,
          value: fmtMs(quantile(delivery.latenciesMs, 0.5)),
        },
        {
          metric: `rotation → ${SUBSCRIBERS} SSE subscribers: p99 (max ${fmtMs(Math.max(...delivery.latenciesMs))})`,
          value: fmtMs(p99),
          target: `p99 < ${TARGET_DELIVERY_P99_MS} ms`,
          met: p99 < TARGET_DELIVERY_P99_MS,
        },
        {
          metric: 'per rotation, first / last subscriber reached: median',
          value: `${fmtMs(median(delivery.firstMs))} / ${fmtMs(median(delivery.lastMs))}`,
        },
        {
          metric: 'the rotation POST itself (start → answer): p50 / p99',
          value: `${fmtMs(quantile(delivery.postMs, 0.5))} / ${fmtMs(quantile(delivery.postMs, 0.99))}`,
        },
      );
    }

    // 3. Unary load with autocannon against the bare route.
    const plaintext = Buffer.alloc(1024, 'p').toString('base64');
    const encryptBody = JSON.stringify({
      custodian: setup.custodian,
      namespace: [setup.namespace],
      data: plaintext,
    });
    const sample = await call('/v1/encrypt', setup.encryptor, JSON.parse(encryptBody));
    if (sample.status !== 200) throw new Error(`encrypt: ${sample.text}`);
    const decryptBody = JSON.stringify({ data: sample.json.data });
    const resolveBody = JSON.stringify({ custodian: setup.custodian, namespace: [setup.namespace] });
    const created = await call('/v1/token-create', setup.admin, {
      principal: 'bench-token',
      grant: [`admin:${setup.custodian}`],
    });
    if (created.status !== 200) throw new Error(`token-create: ${created.text}`);
    const apiToken = created.json.token as string;
    for (const [path, body] of [
      ['/v1/decrypt', decryptBody],
      ['/v1/resolve', resolveBody],
    ] as const) {
      const checked = await call(path, setup.encryptor, JSON.parse(body));
      if (checked.status !== 200) throw new Error(`${path}: ${checked.text}`);
    }

    const load = async (
      url: string,
      token: string | null,
      body: string,
      busyMicros = 0,
      seconds = SECONDS,
      warmup = true,
    ): Promise<Measured> => {
      const options = {
        url,
        ca,
        method: 'POST' as const,
        headers: {
          'content-type': 'application/json',
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(busyMicros === 0 ? {} : { 'x-busy-us': String(busyMicros) }),
        },
        body,
        connections: CONNECTIONS,
      };
      if (warmup) await httpLoad({ ...options, seconds: WARMUP_SECONDS });
      await child.ask('cpu-start');
      const result = await httpLoad({ ...options, seconds });
      const cpu = await child.ask<{ micros: number }>('cpu-stop');
      if (result.failed > 0)
        throw new Error(`${url}: ${result.failed} failed requests of ${result.ok + result.failed}`);
      return { ...result, cpuMicros: cpu.micros / result.ok };
    };
    const bareBefore = await load(setup.bareUrl, null, encryptBody);
    const encryptJwt = await load(`${setup.url}/v1/encrypt`, setup.encryptor, encryptBody);
    const encryptToken = await load(`${setup.url}/v1/encrypt`, apiToken, encryptBody);
    const decrypt = await load(`${setup.url}/v1/decrypt`, setup.encryptor, decryptBody);
    const resolve = await load(`${setup.url}/v1/resolve`, setup.encryptor, resolveBody);
    const calibration: [number, Measured][] = [];
    for (const micros of CALIBRATE) {
      calibration.push([micros, await load(setup.bareBusyUrl, null, encryptBody, micros)]);
    }
    const bareTurn = await load(setup.bareTurnUrl, null, encryptBody);
    const bareAfter = await load(setup.bareUrl, null, encryptBody);
    // The same ratios again in short interleaved rounds, each route between two bare slots.
    const slot = (url: string, token: string | null, body: string) => () =>
      load(url, token, body, 0, ROUND_SECONDS, false);
    const rounds = await ratioRounds(ROUNDS, slot(setup.bareUrl, null, encryptBody), [
      { key: 'encryptJwt', measure: slot(`${setup.url}/v1/encrypt`, setup.encryptor, encryptBody) },
      { key: 'encryptToken', measure: slot(`${setup.url}/v1/encrypt`, apiToken, encryptBody) },
      { key: 'decrypt', measure: slot(`${setup.url}/v1/decrypt`, setup.encryptor, decryptBody) },
      { key: 'resolve', measure: slot(`${setup.url}/v1/resolve`, setup.encryptor, resolveBody) },
    ]);
    const bare = (bareBefore.requestsPerSecond + bareAfter.requestsPerSecond) / 2;
    const bareCpu = (bareBefore.cpuMicros + bareAfter.cpuMicros) / 2;
    const ratio = (r: LoadResult) => r.requestsPerSecond / bare;
    const against = (metric: string, r: Measured, target: boolean): Row => ({
      metric,
      value: `${fmtRun(r)}; ${ratio(r).toFixed(2)}× bare; server CPU ${r.cpuMicros.toFixed(0)} µs/request (${(bareCpu / r.cpuMicros).toFixed(2)}× bare's)`,
      ...(target ? { target: `≥ ${TARGET_RATIO}× bare`, met: ratio(r) >= TARGET_RATIO } : {}),
    });
    rows.push(
      {
        metric: `baseline: bare Fastify HTTPS route, 1 KiB answer (before / after)`,
        value: `${fmtRun(bareBefore)} / ${fmtRun(bareAfter)}; mean ${bare.toFixed(0)} req/s; server CPU ${bareCpu.toFixed(0)} µs/request`,
      },
      against('POST /v1/encrypt 1 KiB (JSON, JWT)', encryptJwt, true),
      against('POST /v1/encrypt 1 KiB (JSON, API token)', encryptToken, false),
      against('POST /v1/decrypt 1 KiB (JSON, JWT)', decrypt, false),
      against('POST /v1/resolve (JWT)', resolve, false),
      against('calibration: the bare route waiting for the turn’s end as the API routes do', bareTurn, false),
      ...calibration.map(([micros, r]) =>
        against(`calibration: the bare route + ${micros} µs of busy wait`, r, false),
      ),
      {
        metric: `interleaved rounds (${ROUNDS} × ${ROUND_SECONDS} s slots): bare route, req/s per slot`,
        value: `median ${median([...rounds.bare]).toFixed(0)} (${Math.min(...rounds.bare).toFixed(0)}–${Math.max(...rounds.bare).toFixed(0)}, ${rounds.bare.length} slots)`,
      },
      inRounds('POST /v1/encrypt 1 KiB (JSON, JWT)', rounds.figures.encryptJwt, true),
      inRounds('POST /v1/encrypt 1 KiB (JSON, API token)', rounds.figures.encryptToken, false),
      inRounds('POST /v1/decrypt 1 KiB (JSON, JWT)', rounds.figures.decrypt, false),
      inRounds('POST /v1/resolve (JWT)', rounds.figures.resolve, false),
    );
    notes.push(
      `autocannon: ${CONNECTIONS} keep-alive connections, pipelining 1, ${WARMUP_SECONDS} s warm-up then ${SECONDS} s per route, in this process (the client) while the servers run in process ${child.pid}`,
      `interleaved rounds: ${ROUNDS} rounds of [bare, encrypt/JWT, bare, encrypt/API token, bare, decrypt, bare, resolve, bare], ${ROUND_SECONDS} s a slot (new connections each, no warm-up); a route's ratio in a round is its req/s ÷ the mean of the bare slots either side of it; median (min–max) over the rounds`,
      'bare route: same process, certificate and key as the keyledger server; parses the same JSON body, answers a fixed 1 KiB; no auth, no access log (the keyledger server logs to a no-op here)',
      'server CPU: the server process’s user + system time over the measured seconds ÷ the requests answered (what the server spends per request, whatever the load generator beside it takes; “× bare’s” is bare ÷ route, comparable to the req/s ratio)',
      `SSE: ${SUBSCRIBERS} streams read in this process, rotations one at a time after ${ROTATION_WARMUP} warm-up rotations; the POST is on a keep-alive connection`,
      `load average (1, 5, 15 min) at end: ${fmtLoad()}`,
    );
  } finally {
    await child.stop();
  }
  return {
    bench: 'Service (issue 12) over HTTPS: unary load, rotation delivery over SSE, streamed encrypt',
    machine: machineInfo(),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    rows,
    notes,
  };
}

await main(import.meta.url, 'server', run);
