import type { LedgerEvent } from './events.js';
import { keyScope, type ScopeKey, scopeKey } from './identities.js';

/** What an event is about: its custodian, and its scope when it names a namespace too. */
export interface EventScope {
  readonly custodian: string | null;
  readonly scopeKey: ScopeKey | null;
}

const NONE: EventScope = Object.freeze({ custodian: null, scopeKey: null });

/**
 * The custodian and scope an event names in its data (scope events, imports, destructions…); none
 * for ledger-wide events (system keys, checkpoints, tokens). Event filters by scope and grants use it.
 */
export function eventScope(event: LedgerEvent): EventScope {
  const data = event.data as { readonly custodian?: unknown; readonly namespace?: unknown };
  if (typeof data.custodian !== 'string') return NONE;
  const custodian = data.custodian;
  if (typeof data.namespace !== 'string') return { custodian, scopeKey: null };
  return { custodian, scopeKey: scopeKey(keyScope(custodian, data.namespace)) };
}
