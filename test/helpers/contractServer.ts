import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LIMITS, type ServerLimits } from '../../src/host/serverConfig.js';
import type { AccessLogEntry } from '../../src/server/accessLog.js';
import { createServer, type KeyledgerServer } from '../../src/server/createServer.js';
import { contractLedger } from '../contract/keyledgerApi.contract.js';
import { makeTestCertificates, type TestCertificates } from './testCertificates.js';
import { AUDIENCE, ISSUER, makeJwtIssuer } from './testJwt.js';

/**
 * A real keyledger server (createServer, HTTPS on 127.0.0.1 port 0) over the contract suite's
 * ledger, whose ScriptedProvider the test drives. Authentication: JWTs from a key made here (its
 * JWKS in a file) and client certificates of the test CA (`app-1`, grants as given).
 */
export interface ContractServer {
  readonly url: string;
  readonly certs: TestCertificates;
  readonly ledger: Awaited<ReturnType<typeof contractLedger>>;
  readonly server: KeyledgerServer;
  /** PEM of the CA that signed the server's certificate. */
  readonly ca: Buffer;
  /** The server's access log, one entry per request (an event stream's when it ends). */
  readonly log: AccessLogEntry[];
  jwt(principal: string, grants: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startContractServer(
  options: { readonly limits?: Partial<ServerLimits>; readonly heartbeatMs?: number } = {},
): Promise<ContractServer> {
  const ledger = await contractLedger();
  const dir = mkdtempSync(join(tmpdir(), 'kl-contract-'));
  const certs = makeTestCertificates();
  const log: AccessLogEntry[] = [];
  const issuer = await makeJwtIssuer();
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify(issuer.jwks));
  const server = await createServer({
    ledger: ledger.ledger,
    storeAccess: ledger.access,
    tls: {
      cert: certs.pem(certs.serverCert),
      key: certs.pem(certs.serverKey),
      clientCa: certs.pem(certs.caCert),
    },
    auth: {
      jwt: {
        jwks,
        issuer: ISSUER,
        audience: AUDIENCE,
        principalClaim: 'sub',
        grantsClaim: 'keyledger_grants',
      },
      mtls: { principalFrom: 'subject', grants: { 'app-1': ['admin:*'] } },
      tokens: null,
    },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    heartbeatMs: options.heartbeatMs ?? 15_000,
    accessLog: (entry) => log.push(entry),
  });
  const url = await server.listen('127.0.0.1', 0);
  return {
    url,
    certs,
    ledger,
    server,
    ca: certs.pem(certs.caCert),
    log,
    jwt: (principal, grants) => issuer.sign(principal, grants),
    async stop() {
      await server.close();
      await ledger.close();
      certs.remove();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
