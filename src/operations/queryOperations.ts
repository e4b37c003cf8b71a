import { map, Observable } from 'rxjs';
import { z } from 'zod';
import { parseAsOf } from '../audit/asOf.js';
import { KeyledgerError } from '../domain/errors.js';
import {
  isLedgerEventType,
  LEDGER_EVENT_TYPES,
  type LedgerEvent,
  type LedgerEventType,
} from '../domain/events.js';
import { parseNamespace } from '../domain/identities.js';
import { MAX_CANDIDATES } from '../ledger/keyResolver.js';
import { keyOut } from './adminOperations.js';
import {
  custodianField,
  keyRefField,
  metadataHashOf,
  parseCustodianArg,
  parseKeyRef,
  parseScopeArg,
  scopeField,
} from './identityArgs.js';
import { defineOperation } from './operation.js';
import { plain } from './plain.js';

/** A usage mistake: ERR_INVALID_ARGUMENT, exit 2 like any bad input. */
export function invalidArgument(message: string): KeyledgerError {
  return new KeyledgerError('ERR_INVALID_ARGUMENT', message, {});
}

const custodianOfScope = (input: { scope: string }) => parseScopeArg(input.scope).custodian;

export const showKeyStatus = defineOperation({
  name: 'show-key-status',
  summary: 'a scope’s marker and keys, their ages, and its next rotation due',
  input: z.strictObject({ scope: scopeField }),
  permission: 'read',
  custodianOf: custodianOfScope,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: (input) => parseScopeArg(input.scope),
  async run(scope, host) {
    const ledger = await host.ledger();
    const status = await ledger.admin.getScopeStatus(scope.custodian, scope.namespace);
    const { keyAgesMs, ...rotation } = await ledger.dueRotations.scopeRotation(scope);
    return plain({
      ...status,
      keys: status.keys.map((k) => ({ ...keyOut(k), ageMs: keyAgesMs[k.keyId] ?? 0 })),
      rotation,
    });
  },
});

export const scopeAsOf = defineOperation({
  name: 'scope-as-of',
  summary: 'a scope’s marker and keys as they were at a time or a position',
  description:
    'at: a global position (digits) or an ISO 8601 date-time with a zone (2026-11-24T09:14:00Z); a bare\ndate is refused.',
  input: z.strictObject({
    scope: scopeField,
    at: z.string().min(1).describe('a global position (digits) or an ISO 8601 date-time with a zone'),
  }),
  permission: 'audit',
  custodianOf: custodianOfScope,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: {
    command: 'show-key-status',
    selectedBy: 'at',
    positionals: ['scope'],
    placeholders: { at: 'time|position' },
  },
  prepare: (input) => ({ scope: parseScopeArg(input.scope), at: parseAsOf(input.at) }),
  async run({ scope, at }, host) {
    const r = await (await host.ledger()).scopeAsOf(scope.custodian, scope.namespace, at);
    return plain({ ...r, keys: r.keys.map(keyOut) });
  },
});

export const listScopes = defineOperation({
  name: 'list-scopes',
  summary: 'every scope the ledger knows, with its marker and ACTIVE key',
  description:
    'With --custodian, only that custodian’s scopes: what a principal granted one custodian may list\n(without it, listing needs a grant over every custodian).',
  input: z.strictObject({
    custodian: custodianField.describe('only this custodian’s scopes (base64, * or name=<plain>)').optional(),
  }),
  permission: 'read',
  custodianOf: (input) => (input.custodian === undefined ? null : parseCustodianArg(input.custodian)),
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { placeholders: { custodian: 'custodian' } },
  prepare: (input) => (input.custodian === undefined ? null : parseCustodianArg(input.custodian)),
  async run(custodian, host) {
    const scopes = (await host.ledger()).admin
      .listScopes()
      .filter((s) => custodian === null || s.custodian === custodian);
    return plain(scopes.map((s) => ({ ...s, keys: s.keys.map(keyOut) })));
  },
});

const namespacesField = z
  .array(z.string())
  .describe('a candidate namespace, tried in the order given (repeatable; default *)')
  .optional();

/** The candidate namespaces of resolve and encrypt, checked before anything is opened. */
export function candidates(namespaces: readonly string[] | undefined): string[] {
  const list = namespaces === undefined || namespaces.length === 0 ? ['*'] : [...namespaces];
  for (const namespace of list) parseNamespace(namespace);
  if (list.length > MAX_CANDIDATES) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', `give 1 to ${MAX_CANDIDATES} candidate namespaces`, {
      candidates: list.length,
    });
  }
  return list;
}

export const resolve = defineOperation({
  name: 'resolve',
  summary: 'which scope and key new data of a custodian would use',
  description:
    'The namespaces are tried in order (default: * alone); the first scope with an ACTIVE key wins.',
  input: z.strictObject({ custodian: custodianField, namespace: namespacesField }),
  permission: 'read',
  custodianOf: (input) => parseCustodianArg(input.custodian),
  writes: true, // with dynamic lookup, a candidate the ledger has no key for is asked of the provider and recorded
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['custodian'], placeholders: { namespace: 'ns' } },
  prepare: (input) => ({
    custodian: parseCustodianArg(input.custodian),
    namespaces: candidates(input.namespace),
  }),
  async run({ custodian, namespaces }, host) {
    const resolver = (await host.ledger()).resolver;
    const r = await resolver.resolveActive(resolver.target(custodian, namespaces));
    if (r === null) {
      throw new KeyledgerError(
        'ERR_NO_ACTIVE_KEY',
        `no candidate namespace has an ACTIVE key: ${namespaces.join(', ')}`,
        { custodian },
      );
    }
    return plain({
      candidate: r.candidate,
      custodian: r.scope.custodian,
      namespace: r.scope.namespace,
      keyId: r.key.keyId,
      state: r.key.state,
      metadataHash: r.key.metadataHash,
      checksum: r.key.checksum,
      tried: namespaces.slice(0, r.candidate + 1),
    });
  },
});

export const history = defineOperation({
  name: 'history',
  summary: 'every event of a scope (or of one key), with actor, reason and the change it made',
  input: z.strictObject({ scope: scopeField, key: keyRefField.optional() }),
  permission: 'audit',
  custodianOf: custodianOfScope,
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'] },
  prepare: (input) => ({
    scope: parseScopeArg(input.scope),
    key: input.key === undefined ? undefined : parseKeyRef(input.key),
  }),
  async run({ scope, key }, host) {
    const ledger = await host.ledger();
    const hash = key === undefined ? undefined : await metadataHashOf(ledger, scope, key);
    return plain(await ledger.history(scope.custodian, scope.namespace, { key: hash }));
  },
});

/** A day (YYYY-MM-DD, taken as UTC) or an ISO 8601 date-time with a zone. */
function parseDay(text: string, name: string): Date {
  const date = /^\d{4}-\d{2}-\d{2}$/.test(text)
    ? new Date(`${text}T00:00:00Z`)
    : /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/.test(text)
      ? new Date(text)
      : new Date(Number.NaN);
  if (Number.isNaN(date.getTime()) || (text.length === 10 && date.toISOString().slice(0, 10) !== text)) {
    throw invalidArgument(`--${name} takes a date (YYYY-MM-DD, UTC) or an ISO 8601 date-time with a zone`);
  }
  return date;
}

export const metrics = defineOperation({
  name: 'metrics',
  summary: 'keys per state and transitions per day (UTC), of the ledger or one scope',
  input: z.strictObject({
    scope: scopeField.optional(),
    since: z.string().describe('first day: YYYY-MM-DD (UTC) or a date-time with a zone').optional(),
    until: z.string().describe('last day: YYYY-MM-DD (UTC) or a date-time with a zone').optional(),
  }),
  permission: 'audit',
  custodianOf: (input) => (input.scope === undefined ? null : parseScopeArg(input.scope).custodian),
  writes: false,
  kind: 'unary',
  opens: 'ledger',
  cli: { positionals: ['scope'], placeholders: { since: 'date', until: 'date' } },
  prepare: (input) => ({
    scope: input.scope === undefined ? null : parseScopeArg(input.scope),
    since: input.since === undefined ? undefined : parseDay(input.since, 'since'),
    until: input.until === undefined ? undefined : parseDay(input.until, 'until'),
  }),
  async run({ scope, since, until }, host) {
    return plain(await (await host.ledger()).keyMetrics({ ...(scope ?? {}), since, until }));
  },
});

function parseTypes(text: string): LedgerEventType[] {
  const types: LedgerEventType[] = [];
  for (const type of text.split(',').map((t) => t.trim())) {
    if (!isLedgerEventType(type)) {
      throw invalidArgument(
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
  throw invalidArgument('--from takes a position (digits), now or start');
}

/**
 * One event as plain data. The wrapped material of KeyMaterialWrapped is left out: a copy in a log
 * would outlive a crypto-shredding of the key (it is ciphertext under a system key the ledger keeps).
 */
export function eventOut(event: LedgerEvent) {
  const data =
    event.type === 'KeyMaterialWrapped' ? { ...event.data, wrapped: '[redacted]' } : (event.data as object);
  return plain({
    position: event.position,
    streamName: event.streamName,
    revision: event.revision,
    type: event.type as string,
    data: data as Record<string, unknown>,
    meta: event.meta as unknown as Record<string, unknown>,
  });
}

export const watch = defineOperation({
  name: 'watch',
  summary: 'ledger events as they happen, one JSON line each',
  description:
    '--from: now (default) prints what comes next, start every event, a position the events after it\n(resume with the last position you processed). Runs until Ctrl-C or SIGTERM.',
  input: z.strictObject({
    types: z.string().describe('event types to keep, comma-separated (T1,T2)').optional(),
    scope: z.array(scopeField).describe('keep the events about this scope (repeatable)').optional(),
    from: z.string().describe('a position, now or start (default now)').optional(),
  }),
  permission: 'audit',
  custodianOf: () => null,
  writes: false,
  kind: 'events',
  opens: 'ledger',
  cli: { placeholders: { types: 'T1,T2', from: 'position|now|start' } },
  prepare: (input) => ({
    types: input.types === undefined ? undefined : parseTypes(input.types),
    scopes: input.scope?.map(parseScopeArg),
    from: parseFrom(input.from),
  }),
  run(options, host) {
    // The ledger opens inside the Observable: subscribing is what starts the work.
    return new Observable<ReturnType<typeof eventOut>>((subscriber) => {
      let inner: { unsubscribe(): void } | null = null;
      let closed = false;
      host.ledger().then(
        (ledger) => {
          if (closed) return;
          try {
            inner = ledger.events$(options).pipe(map(eventOut)).subscribe(subscriber);
          } catch (error) {
            subscriber.error(error);
          }
        },
        (error: unknown) => subscriber.error(error),
      );
      return () => {
        closed = true;
        inner?.unsubscribe();
      };
    });
  },
});

export const QUERY_OPERATIONS = [
  showKeyStatus,
  scopeAsOf,
  listScopes,
  resolve,
  history,
  metrics,
  watch,
] as const;
