import type { TLSSocket } from 'node:tls';
import { KeyledgerError } from '../domain/errors.js';
import type { Principal } from '../domain/grants.js';

/** What checks an API token (`klt_…`); the ledger's token registry implements it (`ledger.tokens`). */
export interface TokenChecker {
  check(
    token: string,
  ):
    | { ok: true; principal: Principal; tokenId: string }
    | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' | 'expired' };
}

/** What a request offers to prove who it is. */
export interface Credentials {
  /** The `Authorization` header, if any. */
  readonly authorization: string | undefined;
  /** The TLS socket, for a client certificate. */
  readonly socket: TLSSocket | null;
}

/**
 * Establishes the principal of a request or throws ERR_UNAUTHENTICATED (synchronously or as the
 * promise's rejection). Synchronous when nothing needs waiting for (an API token, a client
 * certificate, a JWT verified a moment ago): most requests then take no promise at all.
 */
export type Authenticate = (credentials: Credentials) => Principal | Promise<Principal>;

/** The refusal every authenticator throws: the scheme tried and a fixed word, never the credential. */
export function unauthenticated(scheme: string | undefined, reason: string): KeyledgerError {
  return new KeyledgerError(
    'ERR_UNAUTHENTICATED',
    scheme === undefined
      ? `authentication required (${reason})`
      : `${scheme} authentication failed: ${reason}`,
    scheme === undefined ? { reason } : { scheme, reason },
  );
}
