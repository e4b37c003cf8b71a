import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KeyledgerError } from '../domain/errors.js';
import { loadConfig } from '../host/config.js';
import { configPathOf, type OpenLedger, openLedger } from '../host/openLedger.js';
import type { ServerConfig } from '../host/serverConfig.js';
import { storeAccessOf } from '../host/storeAccess.js';
import { parseGrant } from '../operations/grantArgs.js';
import {
  createServer,
  DueRotationTimer,
  type KeyledgerServer,
  parseListen,
  requireTlsOffLoopback,
  stderrAccessLog,
  type TokenChecker,
} from '../server/index.js';
import { optionUsage, SERVE_OPTIONS } from './commandLine.js';
import type { CliIo } from './output.js';
import type { Invocation } from './parseCommandLine.js';
import { reportError } from './reportError.js';

type ServeInvocation = Extract<Invocation, { kind: 'serve' }>;

export const SERVE_USAGE = `usage: keyledger serve ${SERVE_OPTIONS.map((o) => optionUsage(o, false)).join(' ')}

  Serves the ledger's operations over HTTPS (docs/api.md), configured by the config's server section
  (docs/configuration.md); each flag overrides its key. Prints \`listening <url>\` as its first line on
  stdout, access logs as JSON lines on stderr. Refuses a non-loopback address without TLS. SIGTERM or
  SIGINT: stops accepting, lets requests in flight finish (server.limits.shutdownMs), closes the ledger.

  options:
${SERVE_OPTIONS.map((o) => `    --${o.flag} <${o.placeholder}>  ${o.description}`).join('\n')}
    --config <file>, --store <url>  as for every command`;

interface Tls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly clientCa: Buffer | undefined;
}

function readPem(file: string, property: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      `cannot read ${file} (${property})`,
      { file, property },
      { cause: error },
    );
  }
}

/** The TLS files from the flags, else the config; both or neither of certificate and key. */
function tlsOf(invocation: ServeInvocation, config: ServerConfig, cwd: string): Tls | null {
  const flags = invocation.serve;
  const at = (path: string | undefined) => (path === undefined ? undefined : resolve(cwd, path));
  const cert = at(flags.tlsCert) ?? config.tls?.cert;
  const key = at(flags.tlsKey) ?? config.tls?.key;
  const clientCa = at(flags.clientCa) ?? config.tls?.clientCa;
  if ((cert === undefined) !== (key === undefined)) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'TLS takes both a certificate and its key', {
      'tls-cert': cert ?? null,
      'tls-key': key ?? null,
    });
  }
  if (cert === undefined || key === undefined) {
    if (clientCa !== undefined) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        'a client CA (mTLS) needs TLS: give --tls-cert and --tls-key',
        {
          'client-ca': clientCa,
        },
      );
    }
    return null;
  }
  return {
    cert: readPem(cert, 'server.tls.cert'),
    key: readPem(key, 'server.tls.key'),
    clientCa: clientCa === undefined ? undefined : readPem(clientCa, 'server.tls.clientCa'),
  };
}

function checkGrants(config: ServerConfig): void {
  for (const [principal, grants] of Object.entries(config.mtls?.grants ?? {})) {
    for (const grant of grants) {
      try {
        parseGrant(grant);
      } catch (error) {
        throw new KeyledgerError(
          'ERR_INVALID_CONFIG',
          `server.auth.mtls.grants.${principal}: ${(error as Error).message}`,
          { property: `server.auth.mtls.grants.${principal}` },
        );
      }
    }
  }
}

function untilSignal(): Promise<string> {
  return new Promise((done) => {
    const stop = (signal: string) => {
      process.removeListener('SIGTERM', stop);
      process.removeListener('SIGINT', stop);
      done(signal);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/** `keyledger serve`: runs until SIGTERM/SIGINT; exit 0 after a graceful stop, 2 for bad config, 1 else. */
export async function serve(invocation: ServeInvocation, io: CliIo): Promise<number> {
  if (invocation.help) {
    io.stdout(`${SERVE_USAGE}\n`);
    return 0;
  }
  const { global } = invocation;
  let opened: OpenLedger | null = null;
  let access: ReturnType<typeof storeAccessOf> | null = null;
  let server: KeyledgerServer | null = null;
  let dueRotations: DueRotationTimer | null = null;
  try {
    // Everything that can be wrong with the configuration is refused before the store is opened.
    const config = loadConfig(configPathOf(global, io.cwd)).server;
    const listen = parseListen(invocation.serve.listen ?? config.listen);
    const tls = tlsOf(invocation, config, io.cwd);
    requireTlsOffLoopback(listen.host, tls !== null);
    checkGrants(config);
    opened = await openLedger(global, io.cwd, io.env, { warn: io.stderr });
    access = storeAccessOf(opened);
    // API tokens (`keyledger token create`) always authenticate: they live in the ledger itself.
    const tokens: TokenChecker = opened.ledger.tokens;
    const mtls =
      tls?.clientCa === undefined ? null : (config.mtls ?? { principalFrom: 'subject', grants: {} });
    server = await createServer({
      ledger: opened.ledger,
      storeAccess: access.access,
      tls:
        tls === null
          ? null
          : { cert: tls.cert, key: tls.key, ...(tls.clientCa ? { clientCa: tls.clientCa } : {}) },
      auth: { jwt: config.jwt, mtls, tokens },
      limits: config.limits,
      heartbeatMs: config.heartbeatMs,
      accessLog: stderrAccessLog,
    });
    const stopped = untilSignal();
    const url = await server.listen(listen.host, listen.port);
    io.stdout(`listening ${url}\n`);
    if (config.rotateDueKeysEveryMs !== null) {
      dueRotations = new DueRotationTimer({
        ledger: opened.ledger,
        everyMs: config.rotateDueKeysEveryMs,
        log: (line) => io.stderr(`${JSON.stringify(line)}\n`),
      });
      dueRotations.start();
    }
    const signal = await stopped;
    io.stderr(`${signal}: stopping (in-flight requests get ${config.limits.shutdownMs} ms)\n`);
    await dueRotations?.stop();
    dueRotations = null;
    await server.close();
    server = null;
    return 0;
  } catch (error) {
    return reportError(io, error, global.json);
  } finally {
    await dueRotations?.stop().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await access?.close().catch(() => undefined);
    await opened?.close().catch(() => undefined);
  }
}
