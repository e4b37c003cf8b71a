import type { Subscription } from 'rxjs';
import { type AsOfTarget, parseAsOf } from '../audit/asOf.js';
import type { HistoryEntry } from '../audit/history.js';
import type { KeyMetrics } from '../audit/keyMetrics.js';
import {
  isLedgerEventType,
  LEDGER_EVENT_TYPES,
  type LedgerEvent,
  type LedgerEventType,
} from '../domain/events.js';
import { formatScope, type KeyScope, parseScope } from '../domain/identities.js';
import { KEY_STATES } from '../domain/keyState.js';
import { type KeyInfo, toKeyInfo } from '../ledger/keyInfo.js';
import type { Ledger } from '../ledger/ledger.js';
import { type CliIo, table, toJson } from './output.js';
import { usageError } from './parseCommandArgs.js';

/** Lines for the CLI's usage text (commands section). */
export const AUDIT_QUERY_USAGE = `  history <scope> [--key <hash>]              every event of a scope (or of one key), with actor,
                                              reason and the state change it made
  show-key-status <scope> --at <time|position>
                                              the scope's keys as they were at an ISO 8601 time
                                              (with a zone) or a global position
  watch [--types T1,T2] [--scope <scope>]... [--from <position>|now|start]
                                              print ledger events as JSON lines as they happen
                                              (default from now); --from <position> resumes after it
  metrics [<scope>] [--since <date>] [--until <date>]
                                              keys per state and transitions per day (UTC)`;

/** The options only these commands take (each with a value). */
export const AUDIT_QUERY_OPTIONS = {
  at: { type: 'string' },
  types: { type: 'string' },
  scope: { type: 'string', multiple: true },
  from: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

type AuditOption = keyof typeof AUDIT_QUERY_OPTIONS;

/** Which command takes which of AUDIT_QUERY_OPTIONS (show-key-status takes --at, then it is ours). */
export const AUDIT_QUERY_TAKES: Readonly<Record<string, readonly AuditOption[]>> = {
  history: [],
  'show-key-status': ['at'],
  watch: ['types', 'scope', 'from'],
  metrics: ['since', 'until'],
};

/** What run.ts parsed that these commands use. */
export interface AuditQueryArgs {
  readonly command: string;
  readonly args: readonly string[];
  readonly json: boolean;
  readonly key: string | undefined;
  readonly audit: { readonly [K in AuditOption]?: K extends 'scope' ? readonly string[] : string };
  /** run.ts's key output (table or JSON) and a key's JSON form, shared with show-key-status. */
  readonly printKeys: (out: (text: string) => void, keys: readonly KeyInfo[]) => void;
  readonly keyJson: (key: KeyInfo) => unknown;
}

export type AuditQueryRunner = (ledger: Ledger, out: (text: string) => void) => Promise<void>;

/**
 * The runner of an audit query, or null when the command is not one (plain show-key-status
 * included). Options of these commands given to any other command are refused, before anything
 * is opened.
 */
export function prepareAuditQuery(p: AuditQueryArgs, io: CliIo): AuditQueryRunner | null {
  switch (p.command) {
    case 'history':
      return historyCommand(p, scopeArg(p));
    case 'show-key-status':
      return p.audit.at === undefined ? null : asOfCommand(p, scopeArg(p), parseAsOf(p.audit.at));
    case 'watch':
      arity(p, 0, 0);
      return watchCommand(p, io);
    case 'metrics': {
      arity(p, 0, 1);
      const scope = p.args[0] === undefined ? null : parseScope(p.args[0]);
      const since = p.audit.since === undefined ? undefined : parseDay(p.audit.since, 'since');
      const until = p.audit.until === undefined ? undefined : parseDay(p.audit.until, 'until');
      return async (ledger, out) => {
        const metrics = await ledger.keyMetrics({ ...(scope ?? {}), since, until });
        out(p.json ? `${toJson(metrics)}\n` : metricsTable(metrics));
      };
    }
    default:
      return null;
  }
}

function arity(p: AuditQueryArgs, min: number, max: number): void {
  if (p.args.length < min || p.args.length > max) {
    const what = {
      history: '<scope>',
      'show-key-status': '<scope>',
      watch: 'no arguments',
      metrics: '[<scope>]',
    };
    throw usageError(`${p.command} takes ${what[p.command as keyof typeof what] ?? 'other arguments'}`);
  }
}

function scopeArg(p: AuditQueryArgs): KeyScope {
  arity(p, 1, 1);
  return parseScope(p.args[0] ?? '');
}

// ---------------------------------------------------------------------------------------------
// history

function historyCommand(p: AuditQueryArgs, scope: KeyScope): AuditQueryRunner {
  return async (ledger, out) => {
    const entries = await ledger.history(scope.custodian, scope.namespace, { key: p.key });
    out(
      p.json
        ? `${toJson(entries)}\n`
        : table(['POSITION', 'TIME', 'EVENT', 'CHANGE', 'ACTOR', 'REASON'], historyRows(entries)),
    );
  };
}

function historyRows(entries: readonly HistoryEntry[]): string[][] {
  return entries.map((e) => [
    e.position.toString(),
    e.occurredAt,
    e.type,
    [
      ...(e.marker ? [`marker ${e.marker.from ?? '-'} → ${e.marker.to ?? '-'}`] : []),
      ...e.keys.map((k) => `${k.metadataHash.slice(0, 10)}… ${k.from ?? 'new'} → ${k.to}`),
      ...(e.material && e.subject
        ? [`${e.subject.metadataHash.slice(0, 10)}… material under system key ${e.material.stkIdentity}`]
        : []),
      ...(e.keys.length === 0 && e.material === null && e.subject
        ? [`${e.subject.metadataHash.slice(0, 10)}… unchanged`]
        : []),
    ].join('; '),
    e.actor,
    e.reason ?? '',
  ]);
}

// ---------------------------------------------------------------------------------------------
// show-key-status --at

function asOfCommand(p: AuditQueryArgs, scope: KeyScope, at: AsOfTarget): AuditQueryRunner {
  return async (ledger, out) => {
    const r = await ledger.scopeAsOf(scope.custodian, scope.namespace, at);
    const keys = [...r.state.keys.values()].map((k) => toKeyInfo(k, scope));
    const target = typeof at === 'bigint' ? `position ${at}` : at.toISOString();
    if (p.json) {
      out(
        `${toJson({
          custodian: scope.custodian,
          namespace: scope.namespace,
          at: typeof at === 'bigint' ? at : at.toISOString(),
          position: r.position,
          marker: r.state.marker,
          keys: keys.map(p.keyJson),
        })}\n`,
      );
      return;
    }
    const upTo = typeof at === 'bigint' ? '' : ` (events up to position ${r.position})`;
    out(`${formatScope(scope)} as of ${target}${upTo}: marker ${r.state.marker ?? '-'}\n`);
    p.printKeys(out, keys);
  };
}

// ---------------------------------------------------------------------------------------------
// watch

function parseTypes(text: string): LedgerEventType[] {
  const types: LedgerEventType[] = [];
  for (const type of text.split(',').map((t) => t.trim())) {
    if (!isLedgerEventType(type)) {
      throw usageError(
        `--types: unknown event type ${JSON.stringify(type.slice(0, 64))}; the types are ${LEDGER_EVENT_TYPES.join(', ')}`,
      );
    }
    types.push(type);
  }
  return types;
}

function parseFrom(text: string | undefined): 'now' | 'start' | bigint {
  if (text === undefined || text === 'now') return 'now';
  if (text === 'start') return 'start';
  if (/^\d{1,20}$/.test(text)) return BigInt(text);
  throw usageError('--from takes a position (digits), now or start');
}

/**
 * One event as one JSON line. The wrapped material of KeyMaterialWrapped is left out: a copy in
 * a log would outlive a crypto-shredding of the key (it is ciphertext under a system key the
 * ledger keeps). Bigints are strings.
 */
export function eventLine(event: LedgerEvent): string {
  const data =
    event.type === 'KeyMaterialWrapped' ? { ...event.data, wrapped: '[redacted]' } : (event.data as object);
  return `${JSON.stringify(
    {
      position: event.position,
      streamName: event.streamName,
      revision: event.revision,
      type: event.type,
      data,
      meta: event.meta,
    },
    (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
  )}\n`;
}

/** Follows the ledger until SIGINT/SIGTERM (exit 0), the store ends, or it fails. */
function watchCommand(p: AuditQueryArgs, io: CliIo): AuditQueryRunner {
  const types = p.audit.types === undefined ? undefined : parseTypes(p.audit.types);
  const scopes = p.audit.scope?.map((s) => parseScope(s));
  const from = parseFrom(p.audit.from);
  return (ledger, out) => {
    // Checked here, before anything is followed: options the API refuses are usage errors too.
    const events$ = ledger.events$({ types, scopes, from });
    return new Promise<void>((resolve, reject) => {
      let subscription: Subscription | null = null;
      const finish = (error?: unknown) => {
        process.removeListener('SIGINT', stop);
        process.removeListener('SIGTERM', stop);
        subscription?.unsubscribe();
        if (error === undefined) resolve();
        else reject(error);
      };
      const stop = () => finish();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      subscription = events$.subscribe({
        next: (event) => out(eventLine(event)),
        error: (error: unknown) => finish(error),
        complete: () => finish(),
      });
      if (io.isTty) io.stderr('watching the ledger; Ctrl-C to stop\n');
    });
  };
}

// ---------------------------------------------------------------------------------------------
// metrics

/** A day (YYYY-MM-DD, taken as UTC) or an ISO 8601 date-time with a zone. */
function parseDay(text: string, name: string): Date {
  const date = /^\d{4}-\d{2}-\d{2}$/.test(text)
    ? new Date(`${text}T00:00:00Z`)
    : /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/.test(text)
      ? new Date(text)
      : new Date(Number.NaN);
  if (Number.isNaN(date.getTime()) || (text.length === 10 && date.toISOString().slice(0, 10) !== text)) {
    throw usageError(`--${name} takes a date (YYYY-MM-DD, UTC) or an ISO 8601 date-time with a zone`);
  }
  return date;
}

function metricsTable(metrics: KeyMetrics): string {
  const rows = metrics.days.map((d) => [
    d.date,
    ...KEY_STATES.map((s) => String(d.keys[s])),
    String(d.events),
    Object.entries(d.transitions)
      .map(([t, n]) => `${t} ${n}`)
      .join(', '),
  ]);
  return table(['DATE', ...KEY_STATES, 'EVENTS', 'TRANSITIONS'], rows);
}
