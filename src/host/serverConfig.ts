import { resolve } from 'node:path';
import { z } from 'zod';
import { GRACE_PERIOD_FORMAT, parseGracePeriod } from '../operations/gracePeriod.js';

/**
 * The `server` section of keyledger.config.json: how `keyledger serve` listens, authenticates and
 * limits (docs/configuration.md, "server"). Every field has a default but the TLS files; file paths
 * are taken from the config file's folder. `keyledger serve` flags override the listen address and
 * the TLS files.
 */
export const serverSectionSchema = z.strictObject({
  /** `host:port`; port 0 picks a free one (the real one is printed). Default 127.0.0.1:8443. */
  listen: z.string().min(1).optional(),
  tls: z
    .strictObject({
      cert: z.string().min(1),
      key: z.string().min(1),
      /** PEM file of the CA whose client certificates authenticate (mTLS); absent: no mTLS. */
      clientCa: z.string().min(1).optional(),
    })
    .optional(),
  auth: z
    .strictObject({
      jwt: z
        .strictObject({
          /** A local JWKS file (`{ "keys": [...] }`) holding the issuer's public keys. */
          jwks: z.string().min(1),
          issuer: z.string().min(1),
          audience: z.string().min(1),
          /** The claim naming the principal (default `sub`). */
          principalClaim: z.string().min(1).optional(),
          /** The claim holding the grants, an array of `<role>:<custodians>` (default `keyledger_grants`). */
          grantsClaim: z.string().min(1).optional(),
        })
        .optional(),
      mtls: z
        .strictObject({
          /** `subject`: the certificate subject's CN; `san`: its first DNS (or URI) subject alternative name. */
          principalFrom: z.enum(['subject', 'san']).optional(),
          /** Grants of every principal authenticated by a client certificate, by principal name. */
          grants: z.record(z.string(), z.array(z.string())).optional(),
        })
        .optional(),
    })
    .optional(),
  limits: z
    .strictObject({
      jsonBodyBytes: z.number().int().min(1).optional(),
      /** Streamed (octet-stream) bodies; absent: unlimited (they are processed in constant memory). */
      streamBodyBytes: z.number().int().min(1).optional(),
      requestTimeoutMs: z.number().int().min(1).optional(),
      headersTimeoutMs: z.number().int().min(1).optional(),
      rateLimit: z
        .strictObject({ max: z.number().int().min(1), timeWindowMs: z.number().int().min(1) })
        .optional(),
      maxSseConnections: z.number().int().min(0).optional(),
      /** How long a graceful shutdown waits for in-flight requests (default 10000). */
      shutdownMs: z.number().int().min(0).optional(),
    })
    .optional(),
  heartbeatMs: z.number().int().min(1).optional(),
  /**
   * How often `keyledger serve` runs rotate-due-keys (docs/configuration.md): `{ "every": "1h" }`
   * (the default), or `"off"`. Several servers on one store may all run it: each due scope is
   * rotated once.
   */
  rotateDueKeys: z
    .union([
      z.literal('off'),
      z.strictObject({
        every: z.string().transform((value, ctx) => {
          const ms = parseGracePeriod(value);
          if (ms !== null && ms >= 1000) return ms;
          ctx.issues.push({ code: 'custom', input: value, message: `${GRACE_PERIOD_FORMAT}, at least 1s` });
          return z.NEVER;
        }),
      }),
    ])
    .optional(),
});

export type ServerSection = z.infer<typeof serverSectionSchema>;

export interface JwtAuthConfig {
  readonly jwks: string;
  readonly issuer: string;
  readonly audience: string;
  readonly principalClaim: string;
  readonly grantsClaim: string;
}

export interface MtlsAuthConfig {
  readonly principalFrom: 'subject' | 'san';
  readonly grants: Readonly<Record<string, readonly string[]>>;
}

export interface ServerLimits {
  readonly jsonBodyBytes: number;
  readonly streamBodyBytes: number | undefined;
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly rateLimit: { readonly max: number; readonly timeWindowMs: number };
  readonly maxSseConnections: number;
  readonly shutdownMs: number;
}

/** The server section with its defaults applied and its paths absolute. */
export interface ServerConfig {
  readonly listen: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string | undefined } | null;
  readonly jwt: JwtAuthConfig | null;
  readonly mtls: MtlsAuthConfig | null;
  readonly limits: ServerLimits;
  readonly heartbeatMs: number;
  /** How often serve runs rotate-due-keys, in milliseconds; null: never. */
  readonly rotateDueKeysEveryMs: number | null;
}

/** rotate-due-keys in serve: hourly unless the config says otherwise. */
export const DEFAULT_ROTATE_DUE_KEYS_MS = 3_600_000;

export const DEFAULT_LISTEN = '127.0.0.1:8443';

export const DEFAULT_LIMITS: ServerLimits = {
  jsonBodyBytes: 1024 * 1024,
  streamBodyBytes: undefined,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  rateLimit: { max: 600, timeWindowMs: 60_000 },
  maxSseConnections: 100,
  shutdownMs: 10_000,
};

export function resolveServerConfig(section: ServerSection | undefined, baseDir: string): ServerConfig {
  const s = section ?? {};
  const path = (p: string) => resolve(baseDir, p);
  const limits = s.limits ?? {};
  return {
    listen: s.listen ?? DEFAULT_LISTEN,
    tls:
      s.tls === undefined
        ? null
        : {
            cert: path(s.tls.cert),
            key: path(s.tls.key),
            clientCa: s.tls.clientCa === undefined ? undefined : path(s.tls.clientCa),
          },
    jwt:
      s.auth?.jwt === undefined
        ? null
        : {
            jwks: path(s.auth.jwt.jwks),
            issuer: s.auth.jwt.issuer,
            audience: s.auth.jwt.audience,
            principalClaim: s.auth.jwt.principalClaim ?? 'sub',
            grantsClaim: s.auth.jwt.grantsClaim ?? 'keyledger_grants',
          },
    mtls:
      s.auth?.mtls === undefined
        ? null
        : { principalFrom: s.auth.mtls.principalFrom ?? 'subject', grants: s.auth.mtls.grants ?? {} },
    limits: {
      jsonBodyBytes: limits.jsonBodyBytes ?? DEFAULT_LIMITS.jsonBodyBytes,
      streamBodyBytes: limits.streamBodyBytes ?? DEFAULT_LIMITS.streamBodyBytes,
      requestTimeoutMs: limits.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs,
      headersTimeoutMs: limits.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs,
      rateLimit: limits.rateLimit ?? DEFAULT_LIMITS.rateLimit,
      maxSseConnections: limits.maxSseConnections ?? DEFAULT_LIMITS.maxSseConnections,
      shutdownMs: limits.shutdownMs ?? DEFAULT_LIMITS.shutdownMs,
    },
    heartbeatMs: s.heartbeatMs ?? 15_000,
    rotateDueKeysEveryMs:
      s.rotateDueKeys === 'off' ? null : (s.rotateDueKeys?.every ?? DEFAULT_ROTATE_DUE_KEYS_MS),
  };
}
