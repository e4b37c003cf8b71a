import type { TLSSocket } from 'node:tls';
import type { Principal } from '../domain/grants.js';
import type { MtlsAuthConfig } from '../host/serverConfig.js';
import { parseGrant } from '../operations/grantArgs.js';
import { unauthenticated } from './authentication.js';

/**
 * A client certificate signed by the configured CA (the TLS layer checked the chain and reports it
 * as `authorized`); the principal is the subject's CN or the first DNS/URI subject alternative name,
 * its grants those the config gives that name. Returns null when no certificate was presented.
 */
export function mtlsPrincipal(socket: TLSSocket, config: MtlsAuthConfig): Principal | null {
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return null;
  if (!socket.authorized) throw unauthenticated('mtls', 'untrusted-certificate');
  const name = config.principalFrom === 'san' ? sanOf(cert.subjectaltname) : cnOf(cert.subject?.CN);
  if (name === null) throw unauthenticated('mtls', 'no-principal');
  try {
    return { name, grants: (config.grants[name] ?? []).map(parseGrant), method: 'mtls' };
  } catch {
    // The config's grants were checked at start; a name that slipped through gets nothing.
    return { name, grants: [], method: 'mtls' };
  }
}

function cnOf(cn: string | string[] | undefined): string | null {
  const value = Array.isArray(cn) ? cn[0] : cn;
  return value === undefined || value.length === 0 ? null : value;
}

function sanOf(san: string | undefined): string | null {
  for (const entry of (san ?? '').split(',').map((s) => s.trim())) {
    const match = /^(DNS|URI):(.+)$/.exec(entry);
    if (match?.[2] !== undefined) return match[2];
  }
  return null;
}
