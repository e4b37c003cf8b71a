import type { Principal } from '../domain/grants.js';
import type { JwtAuthConfig, MtlsAuthConfig } from '../host/serverConfig.js';
import { type Authenticate, type TokenChecker, unauthenticated } from './authentication.js';
import { jwtAuthenticator } from './jwtAuthenticator.js';
import { mtlsPrincipal } from './mtlsAuthenticator.js';

export interface AuthOptions {
  readonly jwt?: JwtAuthConfig | null;
  readonly mtls?: MtlsAuthConfig | null;
  readonly tokens?: TokenChecker | null;
}

/**
 * One authenticator over the configured schemes. An `Authorization: Bearer` header decides (a token
 * with two dots is a JWT, else an API token) and a bad one fails even with a good certificate;
 * without the header a trusted client certificate authenticates. Nothing at all: ERR_UNAUTHENTICATED.
 */
export function authenticator(options: AuthOptions): Authenticate {
  const jwt = options.jwt ? jwtAuthenticator(options.jwt) : null;
  const tokens = options.tokens ?? null;
  const mtls = options.mtls ?? null;
  return ({ authorization, socket }): Principal | Promise<Principal> => {
    if (authorization !== undefined) {
      const match = /^Bearer +([^\s]+) *$/i.exec(authorization);
      if (match?.[1] === undefined) throw unauthenticated('bearer', 'malformed');
      const token = match[1];
      if (token.split('.').length === 3) {
        if (jwt === null) throw unauthenticated('jwt', 'not-configured');
        return jwt(token);
      }
      if (tokens === null) throw unauthenticated('token', 'not-configured');
      const checked = tokens.check(token);
      if (!checked.ok) throw unauthenticated('token', checked.reason);
      return checked.principal;
    }
    if (mtls !== null && socket !== null) {
      const principal = mtlsPrincipal(socket, mtls);
      if (principal !== null) return principal;
    }
    throw unauthenticated(undefined, 'missing');
  };
}
