import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { initLedger } from '../../src/cli/initCommand.js';
import { type OpenLedger, openLedger } from '../../src/host/openLedger.js';
import { DEFAULT_LIMITS, type ServerLimits } from '../../src/host/serverConfig.js';
import { storeAccessOf } from '../../src/host/storeAccess.js';
import type { AccessLogEntry } from '../../src/server/accessLog.js';
import type { TokenChecker } from '../../src/server/authentication.js';
import { createServer, type KeyledgerServer } from '../../src/server/createServer.js';
import { makeTestCertificates, type TestCertificates } from './testCertificates.js';

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
  /** A JWT from the test issuer for the test audience, valid an hour unless the claims say otherwise. */
  jwt(principal: string, grants: readonly string[], claims?: JWTPayload & { exp?: number }): Promise<string>;
  /** The same claims signed by a key the server does not know. */
  foreignJwt(principal: string, grants: readonly string[]): Promise<string>;
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  head(): Promise<bigint>;
  stop(): Promise<void>;
}

export interface CallOptions {
  readonly token?: string;
  readonly cert?: 'trusted' | 'untrusted';
  readonly json?: unknown;
  readonly body?: Buffer;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly trailers: NodeJS.Dict<string>;
  readonly bytes: Buffer;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers field by field and assert on them
  readonly json: any;
  /** Whether the response ended normally (a destroyed stream rejects instead). */
  readonly complete: boolean;
}

export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'keyledger-test';

export interface TestServerOptions {
  readonly limits?: Partial<ServerLimits>;
  readonly mtlsGrants?: Record<string, readonly string[]>;
  readonly tokens?: TokenChecker;
  readonly heartbeatMs?: number;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kl-server-'));
  const env = { KEYLEDGER_STORE: '', KEYLEDGER_ACTOR: 'setup' };
  await initLedger({}, dir, env);
  const opened = await openLedger({}, dir, env);
  const storeAccess = storeAccessOf(opened);
  const certs = makeTestCertificates();
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-1', alg: 'ES256', use: 'sig' };
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
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
      mtls: { principalFrom: 'subject', grants: options.mtlsGrants ?? { 'app-1': ['admin:*'] } },
      tokens: options.tokens ?? null,
    },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    heartbeatMs: options.heartbeatMs ?? 15_000,
    accessLog: (entry) => log.push(entry),
  });
  const url = await server.listen('127.0.0.1', 0);
  const sign = (
    key: Parameters<SignJWT['sign']>[0],
    kid: string,
    principal: string,
    grants: readonly string[],
    claims: JWTPayload = {},
  ) =>
    new SignJWT({ keyledger_grants: [...grants], ...claims })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setSubject(principal)
      .setIssuer(claims.iss ?? ISSUER)
      .setAudience(claims.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? '1h')
      .sign(key);
  const ca = certs.pem(certs.caCert);
  return {
    url,
    dir,
    opened,
    server,
    certs,
    log,
    jwt: (principal, grants, claims) => sign(privateKey, 'test-1', principal, grants, claims),
    foreignJwt: (principal, grants) => sign(other.privateKey, 'test-1', principal, grants),
    head: () => opened.store.headPosition(),
    call: (method, path, call = {}) =>
      new Promise<Answer>((resolve, reject) => {
        const headers: Record<string, string> = { ...call.headers };
        let body: Buffer | undefined = call.body;
        if (call.json !== undefined) {
          body = Buffer.from(JSON.stringify(call.json));
          headers['content-type'] = 'application/json';
        }
        if (call.contentType !== undefined) headers['content-type'] = call.contentType;
        if (call.token !== undefined) headers.authorization = `Bearer ${call.token}`;
        const clientCert =
          call.cert === 'trusted'
            ? { cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) }
            : call.cert === 'untrusted'
              ? { cert: certs.pem(certs.otherClientCert), key: certs.pem(certs.otherClientKey) }
              : {};
        const req = httpsRequest(
          new URL(path, url),
          { method, headers, ca, agent: false, ...clientCert },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('error', reject);
            res.on('aborted', () => reject(new Error('response aborted')));
            res.on('end', () => {
              const bytes = Buffer.concat(chunks);
              const text = bytes.toString('utf8');
              let json: unknown;
              try {
                json = JSON.parse(text);
              } catch {
                json = undefined;
              }
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                trailers: res.trailers,
                bytes,
                text,
                json,
                complete: res.complete,
              });
            });
          },
        );
        req.on('error', reject);
        req.end(body);
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
