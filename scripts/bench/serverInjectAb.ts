/**
 * A/B of the service's per-request CPU between two source trees, in one process, without sockets
 * or TLS: each tree's `createServer` (its own module graph, its own ledger in a temp dir, JWT auth,
 * rate limit out of the way, access log a no-op) driven by Fastify's `inject`, next to a bare
 * Fastify route that parses the same JSON body and answers a fixed 1 KiB. Rounds of `perRound`
 * requests per case, interleaved (bare, then each route on each tree), CPU time (user + system) per
 * request; the median over `rounds` after two warm-up rounds. On a shared machine this is steadier
 * than requests/s, since both trees see the same minutes; inject adds its own cost to every case.
 *
 *   node --import tsx scripts/bench/serverInjectAb.ts <treeA> <treeB> [routes] [perRound] [rounds]
 *   e.g. a checkout of the base commit (git archive … | tar -x -C /tmp/base; node_modules linked)
 *   against this tree: … /tmp/base . resolve,encrypt,decrypt 250 25
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Fastify from 'fastify';

const [treeA = '.', treeB = '.', routeList = 'resolve,encrypt', perRoundArg = '250', roundsArg = '15'] =
  process.argv.slice(2);
const trees = [resolve(treeA), resolve(treeB)];
const routes = routeList.split(',');
const perRound = Number(perRoundArg);
const rounds = Number(roundsArg);
const custodian = Buffer.from('tenant-1').toString('base64');
const namespace = 'orders';
const plaintext = Buffer.alloc(1024, 'p').toString('base64');
const encryptBody = JSON.stringify({ custodian, namespace: [namespace], data: plaintext });
const dirs: string[] = [];

type Call = () => Promise<void>;

/** One tree's server, ready; answers a call per route. */
async function serverOf(tree: string): Promise<(route: string) => Call> {
  const load = (path: string) => import(join(tree, path));
  const { initLedger } = await load('src/cli/initCommand.ts');
  const { openLedger } = await load('src/host/openLedger.ts');
  const { DEFAULT_LIMITS } = await load('src/host/serverConfig.ts');
  const { storeAccessOf } = await load('src/host/storeAccess.ts');
  const { createServer } = await load('src/server/createServer.ts');
  const { AUDIENCE, ISSUER, makeJwtIssuer } = await load('test/helpers/testJwt.ts');
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-bench-ab-'));
  dirs.push(dir);
  const env = { KEYLEDGER_STORE: '', KEYLEDGER_ACTOR: 'setup' };
  await initLedger({}, dir, env);
  const opened = await openLedger({}, dir, env);
  const issuer = await makeJwtIssuer();
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify(issuer.jwks));
  const server = await createServer({
    ledger: opened.ledger,
    storeAccess: storeAccessOf(opened).access,
    tls: null,
    auth: {
      jwt: {
        jwks,
        issuer: ISSUER,
        audience: AUDIENCE,
        principalClaim: 'sub',
        grantsClaim: 'keyledger_grants',
      },
      tokens: opened.ledger.tokens,
    },
    limits: { ...DEFAULT_LIMITS, rateLimit: { max: 1e9, timeWindowMs: 60_000 } },
    heartbeatMs: 15_000,
    accessLog: () => {},
    consoleDir: null,
  });
  await server.app.ready();
  await opened.ledger.admin.enableKeyManagement(custodian, namespace);
  const token = await issuer.sign('bench-app', [`admin:${custodian}`], {
    exp: Math.floor(Date.now() / 1000) + 3600,
  });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  const post = (route: string, payload: string) =>
    server.app.inject({ method: 'POST', url: `/v1/${route}`, headers, payload });
  const sample = await post('encrypt', encryptBody);
  if (sample.statusCode !== 200) throw new Error(`${tree}: encrypt ${sample.statusCode} ${sample.body}`);
  const bodies: Record<string, string> = {
    encrypt: encryptBody,
    decrypt: JSON.stringify({ data: (JSON.parse(sample.body) as { data: string }).data }),
    resolve: JSON.stringify({ custodian, namespace: [namespace] }),
  };
  return (route) => {
    const body = bodies[route];
    if (body === undefined) throw new Error(`no body for ${route}`);
    return async () => {
      const answer = await post(route, body);
      if (answer.statusCode !== 200) throw new Error(`${tree}: ${route} ${answer.statusCode}`);
    };
  };
}

const bare = Fastify({ logger: false });
const reply1KiB = Buffer.alloc(1024, 'k').toString();
bare.post('/bare', async (request, reply) => {
  if (typeof (request.body as { data?: unknown }).data !== 'string') reply.code(400);
  reply.header('content-type', 'application/json; charset=utf-8');
  return `{"data":"${reply1KiB}"}`;
});
await bare.ready();

const servers = [await serverOf(trees[0] as string), await serverOf(trees[1] as string)];
const cases: [string, Call][] = [
  [
    'bare',
    async () => {
      await bare.inject({
        method: 'POST',
        url: '/bare',
        headers: { 'content-type': 'application/json' },
        payload: encryptBody,
      });
    },
  ],
];
for (const route of routes) {
  servers.forEach((server, i) => {
    cases.push([`${route} @ ${i === 0 ? 'A' : 'B'}`, server(route)]);
  });
}
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
const bareMedian = median(samples.get('bare') ?? []);
console.log(`A = ${trees[0]}, B = ${trees[1]}; ${rounds} rounds of ${perRound} requests per case`);
for (const [name, values] of samples) {
  console.log(
    `${name.padEnd(16)} ${median(values).toFixed(1).padStart(7)} µs CPU/request (median), min ${Math.min(...values).toFixed(1)}, ${(median(values) / bareMedian).toFixed(2)}× bare`,
  );
}
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
process.exit(0);
