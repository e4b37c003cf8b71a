import { isIP } from 'node:net';
import { KeyledgerError } from '../domain/errors.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, `[v6]:port` or `:port` (127.0.0.1); port 0 picks a free one. */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port > 65535) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'listen takes <host>:<port> (port 0: any free port)', {
      listen: text.slice(0, 100),
    });
  }
  const host = match[1] ?? (match[2] === '' || match[2] === undefined ? '127.0.0.1' : match[2]);
  return { host, port };
}

/** Whether only this machine can reach the address (plain HTTP is allowed there alone). */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host.toLowerCase() === '::ffff:127.0.0.1';
}

/** Refuses plain HTTP on an address other machines can reach (ERR_INVALID_CONFIG, exit 2). */
export function requireTlsOffLoopback(host: string, tls: boolean): void {
  if (tls || isLoopback(host)) return;
  throw new KeyledgerError(
    'ERR_INVALID_CONFIG',
    `refusing to listen on ${host} without TLS: configure server.tls (or pass --tls-cert and --tls-key), or listen on a loopback address`,
    { property: 'server.tls' },
  );
}

/** The URL clients use for an address the server listens on. */
export function urlOf(tls: boolean, host: string, port: number): string {
  return `${tls ? 'https' : 'http'}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}
