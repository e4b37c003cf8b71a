import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, type JSONWebKeySet, errors as joseErrors, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { KeyledgerError } from '../domain/errors.js';
import type { Grant, Principal } from '../domain/grants.js';
import type { JwtAuthConfig } from '../host/serverConfig.js';
import { parseGrant } from '../operations/grantArgs.js';
import { unauthenticated } from './authentication.js';

/**
 * Verifies a JWT against the keys of a local JWKS file (read once, at start), with its issuer,
 * audience and expiry checked; the principal and its grants come from the configured claims.
 */
export function jwtAuthenticator(config: JwtAuthConfig): (token: string) => Principal | Promise<Principal> {
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(readFileSync(config.jwks, 'utf8')) as JSONWebKeySet;
  } catch (error) {
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      `cannot read the JWKS file ${config.jwks}`,
      { file: config.jwks, property: 'server.auth.jwt.jwks' },
      { cause: error },
    );
  }
  let keys: ReturnType<typeof createLocalJWKSet>;
  try {
    keys = createLocalJWKSet(jwks);
  } catch (error) {
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      `${config.jwks} is not a JWKS ({ "keys": [...] })`,
      { file: config.jwks, property: 'server.auth.jwt.jwks' },
      { cause: error },
    );
  }
  // A verified token is remembered (by its SHA-256, never the token itself) for at most a minute
  // and never past its own `exp`: a client sends the same JWT with every request, and verifying an
  // ECDSA or RSA signature costs more than the rest of a small request. A miss verifies in full.
  const verified = new LRUCache<string, { readonly principal: Principal; readonly until: number }>({
    max: VERIFIED_MAX,
  });
  // A remembered token answers synchronously: no promise, no microtask for the common case.
  return (token) => {
    const digest = hash('sha256', token, 'base64');
    const known = verified.get(digest);
    const now = Date.now();
    if (known !== undefined && now < known.until) return known.principal;
    return verify(token, digest, now);
  };

  async function verify(token: string, digest: string, now: number): Promise<Principal> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: config.issuer,
        audience: config.audience,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      verified.delete(digest);
      throw unauthenticated('jwt', reasonOf(error));
    }
    const name = payload[config.principalClaim];
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
      throw unauthenticated('jwt', 'no-principal');
    }
    const principal: Principal = { name, grants: grantsOf(payload[config.grantsClaim]), method: 'jwt' };
    // jwtVerify required `exp` and checked it is in the future.
    verified.set(digest, {
      principal,
      until: Math.min((payload.exp as number) * 1000, now + VERIFIED_FOR_MS),
    });
    return principal;
  }
}

/** How long a verified JWT is taken on its hash, at most (its `exp` may end it sooner). */
export const VERIFIED_FOR_MS = 60_000;
const VERIFIED_MAX = 10_000;

function grantsOf(claim: unknown): Grant[] {
  if (claim === undefined) return [];
  if (!Array.isArray(claim) || claim.some((g) => typeof g !== 'string')) {
    throw unauthenticated('jwt', 'bad-grants');
  }
  try {
    return (claim as string[]).map(parseGrant);
  } catch {
    throw unauthenticated('jwt', 'bad-grants');
  }
}

/** A fixed word per failure (the details name no token content). */
function reasonOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `bad-${error.claim}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad-signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'unknown-key';
  return 'malformed';
}
