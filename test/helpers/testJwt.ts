import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'keyledger-test';

/** A JWT issuer for tests: an ES256 key pair (JWKS of its public key) and one the server does not know. */
export interface JwtIssuer {
  /** `{ keys: [...] }`, to write to the server's JWKS file. */
  readonly jwks: { keys: unknown[] };
  /** A JWT for `principal` with `grants` (claim keyledger_grants), valid an hour unless `claims` say otherwise. */
  sign(principal: string, grants: readonly string[], claims?: JWTPayload): Promise<string>;
  /** The same, signed by a key outside the JWKS. */
  signForeign(principal: string, grants: readonly string[]): Promise<string>;
}

export async function makeJwtIssuer(): Promise<JwtIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-1', alg: 'ES256', use: 'sig' };
  const sign = (
    key: Parameters<SignJWT['sign']>[0],
    principal: string,
    grants: readonly string[],
    claims: JWTPayload = {},
  ) =>
    new SignJWT({ keyledger_grants: [...grants], ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'test-1' })
      .setSubject(principal)
      .setIssuer(claims.iss ?? ISSUER)
      .setAudience(claims.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? '1h')
      .sign(key);
  return {
    jwks: { keys: [jwk] },
    sign: (principal, grants, claims) => sign(privateKey, principal, grants, claims),
    signForeign: (principal, grants) => sign(other.privateKey, principal, grants),
  };
}
