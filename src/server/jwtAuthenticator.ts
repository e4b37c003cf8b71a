import { readFileSync } from 'node:fs';
import { createLocalJWKSet, type JSONWebKeySet, errors as joseErrors, jwtVerify } from 'jose';
import { KeyledgerError } from '../domain/errors.js';
import type { Grant, Principal } from '../domain/grants.js';
import type { JwtAuthConfig } from '../host/serverConfig.js';
import { parseGrant } from '../operations/grantArgs.js';
import { unauthenticated } from './authentication.js';

/**
 * Verifies a JWT against the keys of a local JWKS file (read once, at start), with its issuer,
 * audience and expiry checked; the principal and its grants come from the configured claims.
 */
export function jwtAuthenticator(config: JwtAuthConfig): (token: string) => Promise<Principal> {
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
  return async (token) => {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: config.issuer,
        audience: config.audience,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw unauthenticated('jwt', reasonOf(error));
    }
    const name = payload[config.principalClaim];
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
      throw unauthenticated('jwt', 'no-principal');
    }
    return { name, grants: grantsOf(payload[config.grantsClaim]), method: 'jwt' };
  };
}

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
