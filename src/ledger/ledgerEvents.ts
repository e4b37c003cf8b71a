import { defer, filter, map, type Observable } from 'rxjs';
import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import { eventScope } from '../domain/eventScope.js';
import {
  isLedgerEventType,
  LEDGER_EVENT_TYPES,
  type LedgerEvent,
  type LedgerEventType,
  parseLedgerEvent,
} from '../domain/events.js';
import { keyScope, type ScopeKey, scopeKey } from '../domain/identities.js';
import type { EventStore } from '../store/eventStore.js';

/** Options of `ledger.events$()`. */
export interface LedgerEventsOptions<T extends LedgerEventType = LedgerEventType> {
  /** Only events of these types (default: all). */
  readonly types?: readonly T[];
  /**
   * Only events about these scopes: lifecycle and material events, whose data names the scope
   * (default: every event, including those about no scope, such as system-key events).
   */
  readonly scopes?: readonly { readonly custodian: string; readonly namespace?: string }[];
  /**
   * Where to begin: `'now'` (default) the events after what this process has applied, `'start'`
   * every event, or a position: the events after it. Each event carries its `position`; passing the
   * last one handled resumes exactly after it.
   */
  readonly from?: 'start' | 'now' | bigint;
}

/** The ledger event of one of the types `T`. */
export type LedgerEventOf<T extends LedgerEventType> = Extract<LedgerEvent, { readonly type: T }>;

const optionsSchema = z
  .strictObject({
    types: z.array(z.string()).min(1).optional(),
    scopes: z
      .array(z.strictObject({ custodian: z.string(), namespace: z.string().optional() }))
      .min(1)
      .optional(),
    from: z.union([z.literal('start'), z.literal('now'), z.bigint()]).optional(),
  })
  .optional();

interface Filter {
  readonly types: ReadonlySet<string> | null;
  readonly scopes: ReadonlySet<ScopeKey> | null;
  readonly from: 'start' | 'now' | bigint;
}

/**
 * Validates the options once, when events$ is called: a wrong shape (API misuse) is a TypeError;
 * a value that is well-typed but wrong (an unknown event type, a negative position, a malformed
 * custodian) is a KeyledgerError with the input codes the CLI maps to exit 2.
 */
function parseOptions(options: unknown): Filter {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new TypeError(`events$ options: ${z.prettifyError(parsed.error)}`);
  const { types, scopes, from = 'now' } = parsed.data ?? {};
  for (const type of types ?? []) {
    if (!isLedgerEventType(type)) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        `unknown event type ${JSON.stringify(type.slice(0, 64))}; the types are ${LEDGER_EVENT_TYPES.join(', ')}`,
        { type: type.slice(0, 64) },
      );
    }
  }
  if (typeof from === 'bigint' && from < 0n) {
    throw new KeyledgerError('ERR_INVALID_ARGUMENT', 'a position is never negative', {
      from: from.toString(),
    });
  }
  return {
    types: types === undefined ? null : new Set(types),
    scopes:
      scopes === undefined ? null : new Set(scopes.map((s) => scopeKey(keyScope(s.custodian, s.namespace)))),
    from,
  };
}

function aboutScopes(event: LedgerEvent, scopes: ReadonlySet<ScopeKey>): boolean {
  const { scopeKey } = eventScope(event);
  return scopeKey !== null && scopes.has(scopeKey);
}

/**
 * The ledger's events as parsed LedgerEvents, catch-up then live, filtered by type and scope. The
 * options are checked when this is called; the store is subscribed to on subscribe, and released
 * on unsubscribe. An event that fails its schema ends the Observable with ERR_EVENT_SCHEMA.
 * `position()` is this process's applied position, read when a `'now'` subscription starts.
 */
export function ledgerEvents<T extends LedgerEventType>(
  store: EventStore,
  prefix: string,
  position: () => bigint,
  options?: LedgerEventsOptions<T>,
): Observable<LedgerEventOf<T>> {
  const f = parseOptions(options);
  return defer(() => {
    const after = f.from === 'now' ? position() : f.from === 'start' ? 0n : f.from;
    return store.subscribe({ after, streamPrefix: prefix });
  }).pipe(
    // The type is checked on the stored type before parsing: skipped events cost no validation.
    filter((recorded) => f.types === null || f.types.has(recorded.type)),
    map((recorded) => parseLedgerEvent(recorded)),
    filter((event) => f.scopes === null || aboutScopes(event, f.scopes)),
  ) as Observable<LedgerEventOf<T>>;
}
