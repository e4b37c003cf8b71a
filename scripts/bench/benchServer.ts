import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initLedger } from '../../src/cli/initCommand.js';
import { type OpenLedger, openLedger } from '../../src/host/openLedger.js';
import { DEFAULT_LIMITS } from '../../src/host/serverConfig.js';
import { storeAccessOf } from '../../src/host/storeAccess.js';
import { createServer } from '../../src/server/createServer.js';
import { AUDIENCE, ISSUER, type JwtIssuer, makeJwtIssuer } from '../../test/helpers/testJwt.js';

export interface BenchServer {
  readonly opened: OpenLedger;
  readonly storeAccess: ReturnType<typeof storeAccessOf>;
  readonly server: Awaited<ReturnType<typeof createServer>>;
  /** Signs the JWTs the server accepts (its JWKS is in the ledger's dir). */
  readonly issuer: JwtIssuer;
  /** Closes the server, the ledger and removes its dir. */
  close(): Promise<void>;
}

/**
 * The keyledger server the service benches measure: a ledger made by `init` in a temp dir (sqlite,
 * generated provider), JWT auth from a test issuer's JWKS and API tokens, the rate limit raised out
 * of the way (a load run makes tens of thousands of requests per principal; the default would
 * answer 429) and the access log a no-op (the bare route has none either).
 */
export async function openBenchServer(
  dirPrefix: string,
  options: {
    readonly tls: { readonly cert: Buffer; readonly key: Buffer } | null;
    readonly consoleDir?: null;
  },
): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const env = { KEYLEDGER_STORE: '', KEYLEDGER_ACTOR: 'setup' };
  await initLedger({}, dir, env);
  const opened = await openLedger({}, dir, env);
  const storeAccess = storeAccessOf(opened);
  const issuer = await makeJwtIssuer();
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify(issuer.jwks));
  const server = await createServer({
    ledger: opened.ledger,
    storeAccess: storeAccess.access,
    tls: options.tls,
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
    ...(options.consoleDir === undefined ? {} : { consoleDir: options.consoleDir }),
  });
  return {
    opened,
    storeAccess,
    server,
    issuer,
    close: async () => {
      await server.close();
      await storeAccess.close();
      await opened.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
