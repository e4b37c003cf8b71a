import { parseArgs } from 'node:util';
import { KeyledgerError } from '../domain/errors.js';
import { formatScope, parseScope } from '../domain/identities.js';
import type { KeyInfo } from '../ledger/keyInfo.js';
import type { OperationOptions } from '../ledger/operationOptions.js';
import { AUDIT_COMMANDS, AUDIT_OPTIONS, AUDIT_USAGE, runAuditCli } from './auditCommands.js';
import {
  AUDIT_QUERY_OPTIONS,
  AUDIT_QUERY_TAKES,
  AUDIT_QUERY_USAGE,
  type AuditQueryArgs,
  prepareAuditQuery,
} from './auditQueryCommands.js';
import { commandOf } from './commandOf.js';
import { cryptoIoOf, decryptCommand, encryptCommand } from './cryptoCommands.js';
import { DESTROY_USAGE, prepareDestroyCommand } from './destroyCommands.js';
import { initLedger } from './initCommand.js';
import { type GlobalOptions, openLedger } from './openLedger.js';
import { type CliIo, table, toJson } from './output.js';
import { arity, usageError } from './parseCommandArgs.js';
import { reportError } from './reportError.js';
import { REWRAP_COMMANDS, REWRAP_OPTIONS, REWRAP_USAGE, runRewrapCli } from './rewrapCommand.js';

const USAGE = `usage: keyledger <command> [arguments] [options]

commands (scope = <custodian-base64>[:<namespace>], namespace default *):
  init                                        create a dev setup (config, keystore, store) and record the system key
  enable-key-management <scope>               enable key management for a scope
  show-key-status <scope>                     list a scope's keys
  rotate-stk                                  record the provider's current system key if it is new
  disable-key-management <scope>              disable a scope; its keys become INACTIVE
  disable-managed-key <scope> <metadata-hash> disable one key
  enable-managed-key <scope> <metadata-hash>  re-enable a DISABLED key as INACTIVE
  rotate-managed-key <scope>                  make the provider's new key ACTIVE, the old INACTIVE
  refresh-managed-keys <scope>                re-check every key with the provider
  set-managed-key <scope> <metadata>          make the key named by metadata the ACTIVE key
  eject-cache-entry <scope> [--key <hash>]    evict a scope's (or one key's) cache entries everywhere
  clear-cache                                 evict every cache entry everywhere
  resolve <custodian> [--namespace <ns>]...   which scope and key new data would use, trying the
                                              namespaces in order (default: *)
  encrypt <custodian> [--namespace <ns>]... [--aad <text>]
                                              encrypt stdin to stdout (stream format) with the key
                                              resolve would pick; never to a terminal
  decrypt [--aad <text>]                      decrypt stdin to stdout; exit 1 if anything is wrong
                                              (stdout then holds at most the verified chunks)
${REWRAP_USAGE}
${AUDIT_USAGE}
${DESTROY_USAGE}
${AUDIT_QUERY_USAGE}

options:
  --store <url>     sqlite:<path> (default sqlite:.keyledger/ledger.db), memory:, esdb://host:port or
                    esdb+discover://host:port (EventStoreDB); env KEYLEDGER_STORE
  --config <file>   config file (default ./keyledger.config.json)
  --json            machine-readable output
  --actor <name>    who is acting (default: env KEYLEDGER_ACTOR, else the OS user)
  --reason <text>   why; recorded with the events
  --aad <text>      encrypt/decrypt: associated data (UTF-8), authenticated, not stored
  --grace <n><unit> destroy-managed-key: grace period, unit s|m|h|d|w (default: config
                    destroyGracePeriod, else 7d); 0s makes it due at once
  -h, --help        this text

exit codes: 0 success, 2 bad input or refused by a rule (nothing written), 1 any other failure`;

interface Parsed {
  readonly command: string;
  readonly args: readonly string[];
  readonly json: boolean;
  readonly key: string | undefined;
  readonly aad: string | undefined;
  readonly grace: string | undefined;
  readonly audit: AuditQueryArgs['audit'];
  readonly namespaces: readonly string[];
  readonly global: GlobalOptions;
  readonly operation: OperationOptions;
}

/** The options of the commands run.ts runs itself (rewrap and audit commands have their own). */
const OPTIONS = {
  store: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  actor: { type: 'string' },
  reason: { type: 'string' },
  key: { type: 'string' },
  aad: { type: 'string' },
  grace: { type: 'string' },
  ...AUDIT_QUERY_OPTIONS,
  namespace: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Options every command takes; the rest belong to the commands TAKES lists. */
const GLOBAL_OPTIONS: ReadonlySet<string> = new Set(['store', 'config', 'json', 'actor', 'reason', 'help']);

/**
 * Which command takes which of run.ts's own options (with AUDIT_QUERY_TAKES). An option given to a command that does not take it is refused before
 * anything is opened, rather than silently ignored.
 */
const TAKES: Readonly<Record<string, readonly string[]>> = {
  'eject-cache-entry': ['key'],
  history: ['key'],
  resolve: ['namespace'],
  encrypt: ['namespace', 'aad'],
  decrypt: ['aad'],
  'destroy-managed-key': ['grace'],
};

function assertOptionsTaken(command: string, values: Readonly<Record<string, unknown>>): void {
  const takes: readonly string[] = [...(TAKES[command] ?? []), ...(AUDIT_QUERY_TAKES[command] ?? [])];
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || GLOBAL_OPTIONS.has(name) || takes.includes(name)) continue;
    throw usageError(`${command} does not take --${name}`);
  }
}

/** Every option of every command, to find the command in argv wherever the options stand. */
const EVERY_OPTION = { ...OPTIONS, ...REWRAP_OPTIONS, ...AUDIT_OPTIONS } as const;

function parse(argv: readonly string[]): Parsed | 'help' {
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: OPTIONS,
    }));
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const [command, ...args] = positionals;
  if (values.help === true || command === undefined || command === 'help') return 'help';
  assertOptionsTaken(command, values);
  const str = (v: string | boolean | string[] | undefined) => (typeof v === 'string' ? v : undefined);
  return {
    command,
    args,
    json: values.json === true,
    key: str(values.key),
    aad: str(values.aad),
    grace: str(values.grace),
    audit: {
      at: str(values.at),
      types: str(values.types),
      scope: Array.isArray(values.scope) ? values.scope : undefined,
      from: str(values.from),
      since: str(values.since),
      until: str(values.until),
    },
    namespaces: Array.isArray(values.namespace) ? values.namespace : [],
    global: { store: str(values.store), config: str(values.config), actor: str(values.actor) },
    operation: { actor: str(values.actor), reason: str(values.reason) },
  };
}

function keyRows(keys: readonly KeyInfo[]): string[][] {
  return keys.map((k) => [formatScope(k as never), k.state, k.metadataHash, k.checksum, k.refreshedAt]);
}

function keyJson(k: KeyInfo) {
  return {
    custodian: k.custodian,
    namespace: k.namespace,
    state: k.state,
    metadataHash: k.metadataHash,
    checksum: k.checksum,
    refreshedAt: k.refreshedAt,
    keyId: k.keyId,
    metadata: k.metadata,
    stkIdentity: k.stkIdentity,
    createdAt: k.createdAt,
    updatedAt: k.updatedAt,
    destructionDueAt: k.destructionDueAt,
  };
}

const KEY_HEADERS = ['SCOPE', 'STATE', 'METADATA HASH', 'CHECKSUM', 'REFRESHED'];

/** show-key-status: one line per key scheduled for destruction or destroyed, below the table. */
function destructionNotes(keys: readonly KeyInfo[]): string {
  return keys
    .map((k) =>
      k.destructionDueAt !== null
        ? `${k.metadataHash}: destruction scheduled, due at ${k.destructionDueAt}\n`
        : k.state === 'DESTROYED'
          ? `${k.metadataHash}: DESTROYED at ${k.updatedAt}, material deleted (see destruction-receipts)\n`
          : '',
    )
    .join('');
}

/** Runs one CLI invocation; returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const named = commandOf(argv, EVERY_OPTION);
  if (named !== undefined && REWRAP_COMMANDS.includes(named)) return runRewrapCli(argv, io);
  if (named !== undefined && AUDIT_COMMANDS.includes(named)) return runAuditCli(argv, io);
  let parsed: Parsed | 'help';
  try {
    parsed = parse(argv);
  } catch (error) {
    return reportError(io, error);
  }
  if (parsed === 'help') {
    io.stdout(`${USAGE}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  try {
    await dispatch(parsed, io);
    return 0;
  } catch (error) {
    return reportError(io, error);
  }
}

async function dispatch(p: Parsed, io: CliIo): Promise<void> {
  const out = (text: string) => io.stdout(text);
  if (p.command === 'init') {
    arity(p, []);
    const result = await initLedger(p.global, io.cwd, io.env);
    if (p.json) out(`${toJson(result)}\n`);
    else {
      out(`config      ${result.config}${result.keystore === null ? ' (existing)' : ' (created)'}\n`);
      if (result.keystore !== null)
        out(`keystore    ${result.keystore} (PKCS#12, password in keystore.pass)\n`);
      out(`store       ${result.store}\n`);
      out(`system key  #${result.systemKey.sequence} identity ${result.systemKey.identity}\n`);
    }
    return;
  }
  // Validate the arguments before anything is opened: bad input never touches the store.
  const command = prepare(p, io);
  const opened = await openLedger(p.global, io.cwd, io.env, io.stderr);
  try {
    await command(opened.ledger, out);
  } finally {
    await opened.close();
  }
}

type Runner = (
  ledger: Awaited<ReturnType<typeof openLedger>>['ledger'],
  out: (t: string) => void,
) => Promise<void>;

function prepare(p: Parsed, io: CliIo): Runner {
  const op = p.operation;
  const printKeys = (out: (t: string) => void, keys: readonly KeyInfo[]) =>
    out(p.json ? `${toJson(keys.map(keyJson))}\n` : table(KEY_HEADERS, keyRows(keys)));
  const scopeArg = (value: string) => parseScope(value);
  const destroy = prepareDestroyCommand(p);
  if (destroy !== null) return destroy;
  const audit = prepareAuditQuery({ ...p, printKeys, keyJson }, io);
  if (audit !== null) return audit;
  switch (p.command) {
    case 'enable-key-management': {
      const scope = scopeArg(arity(p, ['scope'])[0] ?? '');
      return async (ledger, out) => {
        const r = await ledger.admin.enableKeyManagement(scope.custodian, scope.namespace, op);
        if (p.json)
          out(`${toJson({ marker: r.marker, key: r.key && keyJson(r.key), position: r.position })}\n`);
        else {
          out(
            `${formatScope(scope)}: marker ${r.marker ?? '-'}${r.position === null ? ' (already enabled)' : ''}\n`,
          );
          if (r.key) printKeys(out, [r.key]);
        }
      };
    }
    case 'show-key-status': {
      const scope = scopeArg(arity(p, ['scope'])[0] ?? '');
      return async (ledger, out) => {
        const status = await ledger.admin.getScopeStatus(scope.custodian, scope.namespace);
        if (!p.json) out(`${formatScope(scope)}: marker ${status.marker ?? '-'}\n`);
        printKeys(out, status.keys);
        if (!p.json) out(destructionNotes(status.keys));
      };
    }
    case 'rotate-stk': {
      arity(p, []);
      return async (ledger, out) => {
        const r = await ledger.admin.rotateSTK(op);
        if (p.json) out(`${toJson(r)}\n`);
        else
          out(
            r.changed
              ? `system key rotated: #${r.sequence} identity ${r.identity}\n`
              : `system key unchanged (#${r.sequence})\n`,
          );
      };
    }
    case 'disable-key-management': {
      const scope = scopeArg(arity(p, ['scope'])[0] ?? '');
      return async (ledger, out) => {
        const r = await ledger.admin.disableKeyManagement(scope.custodian, scope.namespace, op);
        const keys = await ledger.admin.getManagedKeys(scope.custodian, scope.namespace);
        if (p.json) out(`${toJson({ position: r.position, keys: keys.map(keyJson) })}\n`);
        else {
          out(`${formatScope(scope)}: key management disabled${r.position === null ? ' (already)' : ''}\n`);
          printKeys(out, keys);
        }
      };
    }
    case 'disable-managed-key':
    case 'enable-managed-key': {
      const [s = '', hash = ''] = arity(p, ['scope', 'metadata-hash']);
      const scope = scopeArg(s);
      return async (ledger, out) => {
        const r =
          p.command === 'disable-managed-key'
            ? await ledger.admin.disableManagedKey(scope.custodian, scope.namespace, hash, op)
            : await ledger.admin.enableManagedKey(scope.custodian, scope.namespace, hash, op);
        printKeys(out, [r.key]);
      };
    }
    case 'rotate-managed-key': {
      const scope = scopeArg(arity(p, ['scope'])[0] ?? '');
      return async (ledger, out) => {
        const r = await ledger.admin.rotateManagedKey(scope.custodian, scope.namespace, op);
        if (p.json) out(`${toJson(r === null ? null : { position: r.position, key: keyJson(r.key) })}\n`);
        else if (r === null)
          out(`${formatScope(scope)}: the provider has no new ACTIVE key; nothing changed\n`);
        else printKeys(out, await ledger.admin.getManagedKeys(scope.custodian, scope.namespace));
      };
    }
    case 'refresh-managed-keys': {
      const scope = scopeArg(arity(p, ['scope'])[0] ?? '');
      return async (ledger, out) => {
        const r = await ledger.admin.refreshManagedKeys(scope.custodian, scope.namespace, op);
        if (!p.json && r.skipped)
          out(`${formatScope(scope)}: key management is disabled; nothing refreshed\n`);
        printKeys(out, r.keys);
      };
    }
    case 'set-managed-key': {
      const [s = '', metadata = ''] = arity(p, ['scope', 'metadata']);
      const scope = scopeArg(s);
      return async (ledger, out) => {
        await ledger.admin.setManagedKey(scope.custodian, scope.namespace, metadata, op);
        printKeys(out, await ledger.admin.getManagedKeys(scope.custodian, scope.namespace));
      };
    }
    case 'eject-cache-entry': {
      const scope = scopeArg(arity(p, ['scope'])[0] ?? '');
      return async (ledger, out) => {
        const r = await ledger.admin.ejectManagedKeyDataCacheEntry(
          scope.custodian,
          scope.namespace,
          p.key,
          op,
        );
        out(p.json ? `${toJson(r)}\n` : `cache eviction recorded at position ${r.position}\n`);
      };
    }
    case 'clear-cache': {
      arity(p, []);
      return async (ledger, out) => {
        const r = await ledger.admin.clearManagedKeyDataCache(op);
        out(p.json ? `${toJson(r)}\n` : `cache clear recorded at position ${r.position}\n`);
      };
    }
    case 'resolve': {
      const [custodian = ''] = arity(p, ['custodian']);
      const namespaces = p.namespaces.length > 0 ? p.namespaces : ['*'];
      return async (ledger, out) => {
        const resolver = ledger.resolver;
        const r = await resolver.resolveActive(resolver.target(custodian, namespaces));
        if (r === null) {
          throw new KeyledgerError(
            'ERR_NO_ACTIVE_KEY',
            `no candidate namespace has an ACTIVE key: ${namespaces.join(', ')}`,
            {
              custodian,
            },
          );
        }
        const result = {
          candidate: r.candidate,
          custodian: r.scope.custodian,
          namespace: r.scope.namespace,
          keyId: r.key.keyId,
          state: r.key.state,
          metadataHash: r.key.metadataHash,
          checksum: r.key.checksum,
          tried: namespaces.slice(0, r.candidate + 1),
        };
        if (p.json) out(`${toJson(result)}\n`);
        else
          out(
            table(
              ['CANDIDATE', 'SCOPE', 'KEY ID', 'STATE', 'CHECKSUM'],
              [
                [
                  `${r.candidate + 1} of ${namespaces.length}`,
                  formatScope(r.scope),
                  r.key.keyId,
                  r.key.state,
                  r.key.checksum,
                ],
              ],
            ),
          );
      };
    }
    case 'encrypt': {
      const [custodian = ''] = arity(p, ['custodian']);
      return encryptCommand({ custodian, namespaces: p.namespaces, aad: p.aad }, cryptoIoOf(io));
    }
    case 'decrypt': {
      arity(p, []);
      return decryptCommand({ aad: p.aad }, cryptoIoOf(io));
    }
    default:
      throw usageError(`unknown command ${p.command}; see keyledger --help`);
  }
}
