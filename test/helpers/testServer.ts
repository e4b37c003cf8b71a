import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWTPayload } from 'jose';
import { initLedger } from '../../src/cli/initCommand.js';
import { type OpenLedger, openLedger } from '../../src/host/openLedger.js';
import { DEFAULT_LIMITS, type ServerLimits } from '../../src/host/serverConfig.js';
import { storeAccessOf } from '../../src/host/storeAccess.js';
import type { AccessLogEntry } from '../../src/server/accessLog.js';
import type { TokenChecker } from '../../src/server/authentication.js';
import { createServer, type KeyledgerServer } from '../../src/server/createServer.js';
import { type Answer, type CallOptions, httpsCall } from './httpsCall.js';
import { makeTestCertificates, type TestCertificates } from './testCertificates.js';
import { AUDIENCE, ISSUER, makeJwtIssuer } from './testJwt.js';

export type { Answer, CallOptions } from './httpsCall.js';

/**
 * A real keyledger server for a test: a ledger set up by `init` in a temp dir (sqlite store,
 * generated provider), served over HTTPS on 127.0.0.1 port 0 with JWT (a key pair made here, its
 * JWKS in a file) and mTLS (test CA; client `app-1` has the grants given). `stop()` closes all.
 */
export interface TestServer {
  readonly url: string;
  readonly dir: string;
  readonly opened: OpenLedger;
  readonly server: KeyledgerServer;
  readonly certs: TestCertificates;
  readonly log: AccessLogEntry[];
  /**
   * The access-log entry of a request: written when the server's response closes, which may come a
   * moment after the client has read the end, so this waits for it (up to 2 s).
   */
  logEntry(requestId: unknown): Promise<AccessLogEntry>;
  /** A JWT from the test issuer for the test audience, valid an hour unless the claims say otherwise. */
  jwt(principal: string, grants: readonly string[], claims?: JWTPayload): Promise<string>;
  /** The same claims signed by a key the server does not know. */
  foreignJwt(principal: string, grants: readonly string[]): Promise<string>;
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  head(): Promise<bigint>;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  readonly limits?: Partial<ServerLimits>;
  readonly mtlsGrants?: Record<string, readonly string[]>;
  /** How a client certificate names its principal (default: subject CN). */
  readonly principalFrom?: 'subject' | 'san';
  readonly tokens?: TokenChecker;
  readonly heartbeatMs?: number;
  /** The web console's files (default: the built one in dist/console, when there is one). */
  readonly consoleDir?: string | null;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kl-server-'));
  const env = { KEYLEDGER_STORE: '', KEYLEDGER_ACTOR: 'setup' };
  await initLedger({}, dir, env);
  const opened = await openLedger({}, dir, env);
  const storeAccess = storeAccessOf(opened);
  const certs = makeTestCertificates();
  const issuer = await makeJwtIssuer();
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(issuer.jwks));
  const log: AccessLogEntry[] = [];
  const server = await createServer({
    ledger: opened.ledger,
    storeAccess: storeAccess.access,
    tls: {
      cert: certs.pem(certs.serverCert),
      key: certs.pem(certs.serverKey),
      clientCa: certs.pem(certs.caCert),
    },
    auth: {
      jwt: {
        jwks: jwksFile,
        issuer: ISSUER,
        audience: AUDIENCE,
        principalClaim: 'sub',
        grantsClaim: 'keyledger_grants',
      },
      mtls: {
        principalFrom: options.principalFrom ?? 'subject',
        grants: options.mtlsGrants ?? { 'app-1': ['admin:*'] },
      },
      tokens: options.tokens ?? opened.ledger.tokens,
    },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    heartbeatMs: options.heartbeatMs ?? 15_000,
    accessLog: (entry) => log.push(entry),
    ...(options.consoleDir === undefined ? {} : { consoleDir: options.consoleDir }),
  });
  const url = await server.listen('127.0.0.1', 0);
  const ca = certs.pem(certs.caCert);
  return {
    url,
    dir,
    opened,
    server,
    certs,
    log,
    logEntry: async (requestId) => {
      for (let waited = 0; waited < 2000; waited += 20) {
        const entry = log.find((e) => e.requestId === requestId);
        if (entry !== undefined) return entry;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`no access-log entry for ${String(requestId)}`);
    },
    jwt: (principal, grants, claims) => issuer.sign(principal, grants, claims),
    foreignJwt: (principal, grants) => issuer.signForeign(principal, grants),
    head: () => opened.store.headPosition(),
    call: (method, path, call = {}) =>
      httpsCall(url, method, path, {
        ca,
        ...call,
        ...(call.cert === 'trusted'
          ? { clientCert: { cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) } }
          : call.cert === 'untrusted'
            ? { clientCert: { cert: certs.pem(certs.otherClientCert), key: certs.pem(certs.otherClientKey) } }
            : {}),
      }),
    async stop() {
      await server.close();
      await storeAccess.close();
      await opened.close();
      certs.remove();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
