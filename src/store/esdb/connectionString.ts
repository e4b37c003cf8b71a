import { KeyledgerError } from '../../domain/errors.js';

/**
 * An EventStoreDB connection string, checked. keyledger hands `connectionString` to the client as
 * written (only the scheme is lower-cased, which the client requires); the check exists so that a
 * mistake is reported by us, without the credentials, instead of by the client, whose parse errors
 * and warnings print the whole string, password included.
 */
export interface EsdbConnection {
  readonly connectionString: string;
  /** `esdb+discover://`: the first host is asked for the cluster's members (gossip). */
  readonly discover: boolean;
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  /** The connection string with any `user:password@` replaced by `***@`: safe for messages. */
  readonly redacted: string;
}

type OptionKind = 'boolean' | 'integer' | 'text' | 'nodePreference';

/** The client's query options (6.2), by their "flat case" name, which is how the client matches them. */
const OPTIONS: Readonly<Record<string, { readonly name: string; readonly kind: OptionKind }>> = {
  tls: { name: 'tls', kind: 'boolean' },
  tlsverifycert: { name: 'tlsVerifyCert', kind: 'boolean' },
  tlscafile: { name: 'tlsCAFile', kind: 'text' },
  usercertfile: { name: 'userCertFile', kind: 'text' },
  userkeyfile: { name: 'userKeyFile', kind: 'text' },
  connectionname: { name: 'connectionName', kind: 'text' },
  defaultdeadline: { name: 'defaultDeadline', kind: 'integer' },
  keepaliveinterval: { name: 'keepAliveInterval', kind: 'integer' },
  keepalivetimeout: { name: 'keepAliveTimeout', kind: 'integer' },
  maxdiscoverattempts: { name: 'maxDiscoverAttempts', kind: 'integer' },
  discoveryinterval: { name: 'discoveryInterval', kind: 'integer' },
  gossiptimeout: { name: 'gossipTimeout', kind: 'integer' },
  nodepreference: { name: 'nodePreference', kind: 'nodePreference' },
  throwonappendfailure: { name: 'throwOnAppendFailure', kind: 'boolean' },
};

const NODE_PREFERENCES = new Set(['leader', 'follower', 'random', 'readonlyreplica']);

/** Characters the client does not accept in a host name (its own pattern). */
const HOST = /^[^$+!?*'(),;[\]{}|"%~#<>=&@/:\s]+$/;

const DEFAULT_PORT = 2113;

/** Replaces `user:password@` (everything between `//` and the last `@`) with `***@`. */
export function redactConnectionString(url: string): string {
  return url.replace(/^([^:]*:\/\/).*@/s, '$1***@');
}

function flatCase(name: string): string {
  return name.trim().toLowerCase().replace(/[_-]/g, '');
}

/** Parses `esdb://[user:password@]host[:port][,host[:port]…][/][?key=value&…]` (or `esdb+discover://`). */
export function parseEsdbConnectionString(url: string): EsdbConnection {
  const redacted = redactConnectionString(url);
  const given = (/^([^:]*):/.exec(url.trim())?.[1] ?? '').toLowerCase();
  const fail = (problem: string): never => {
    throw new KeyledgerError(
      'ERR_INVALID_STORE_URL',
      `invalid EventStoreDB store URL ${redacted}: ${problem}`,
      {
        scheme: given,
        url: redacted,
      },
    );
  };
  const match = /^(esdb|esdb\+discover):\/\/(.*)$/is.exec(url.trim());
  if (match === null) return fail('expected esdb://host:port or esdb+discover://host:port');
  const scheme = (match[1] ?? '').toLowerCase();
  let rest = match[2] ?? '';

  // Credentials: the client takes `[^:]+:[^@]+@`; a password with ':' or '@' must be percent-encoded.
  const credentials = /^([^:@/?]+):([^@]+)@/.exec(rest);
  if (credentials !== null) {
    rest = rest.slice(credentials[0].length);
  } else if (/^[^/?]*@/.test(rest)) {
    fail('credentials must be user:password@ (percent-encode special characters)');
  }

  const queryAt = rest.indexOf('?');
  const hostPart = (queryAt === -1 ? rest : rest.slice(0, queryAt)).replace(/\/+$/, '');
  const query = queryAt === -1 ? '' : rest.slice(queryAt + 1);
  if (hostPart === '') fail('no host');
  const hosts = hostPart.split(',').map((entry) => {
    const [host = '', port, ...extra] = entry.trim().split(':');
    if (!HOST.test(host) || extra.length > 0) fail(`bad host ${JSON.stringify(entry)}`);
    const number = port === undefined ? DEFAULT_PORT : Number(port);
    if (!/^\d+$/.test(port ?? '2113') || !Number.isInteger(number) || number < 1 || number > 65535) {
      fail(`bad port in ${JSON.stringify(entry)}`);
    }
    return { host, port: number };
  });

  if (query !== '') {
    for (const pair of query.split('&')) {
      const equals = pair.indexOf('=');
      const key = equals <= 0 ? '' : pair.slice(0, equals);
      const value = equals <= 0 ? '' : pair.slice(equals + 1).trim();
      const option = OPTIONS[flatCase(key)];
      if (option === undefined) return fail(`unknown option ${JSON.stringify(key || pair)}`);
      if (value === '') fail(`option ${option.name} has no value`);
      checkValue(option.name, option.kind, value, fail);
    }
  }
  return {
    connectionString: `${scheme}://${url.trim().slice(scheme.length + 3)}`,
    discover: scheme === 'esdb+discover',
    hosts,
    redacted,
  };
}

function checkValue(name: string, kind: OptionKind, value: string, fail: (problem: string) => never): void {
  switch (kind) {
    case 'boolean':
      if (value !== 'true' && value !== 'false') fail(`option ${name} must be true or false`);
      // The client ignores tlsVerifyCert=false (6.2 cannot skip verification) and warns on the
      // console with the whole connection string; refusing it keeps the password off the console.
      if (name === 'tlsVerifyCert' && value === 'false') {
        fail('tlsVerifyCert=false is not supported by the EventStoreDB client; give the CA with tlsCAFile');
      }
      return;
    case 'integer':
      if (!/^-?\d+$/.test(value)) fail(`option ${name} must be an integer`);
      return;
    case 'nodePreference':
      if (!NODE_PREFERENCES.has(flatCase(value))) {
        fail(`option ${name} must be leader, follower, random or read_only_replica`);
      }
      return;
    case 'text':
      return;
    default: {
      const unexpected: never = kind;
      fail(`unexpected option kind ${String(unexpected)}`);
    }
  }
}
