import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { OperationHost } from '../../src/operations/operation.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from './scriptedProvider.js';

/**
 * A memory-store ledger whose provider answers scripted keys, with key management enabled for each
 * given custodian's namespace (key `k1`, `k2`, … in that order), the static resolver (no dynamic
 * lookup): what the envelope tests encrypt and decrypt with. The caller closes it.
 */
export async function openScriptedLedger(
  custodians: readonly string[],
  namespace: string,
): Promise<{ readonly ledger: Ledger; readonly scripted: ScriptedProvider }> {
  const scripted = new ScriptedProvider();
  const ledger = await Ledger.open({
    store: new MemoryEventStore(),
    provider: scripted,
    actor: 'test',
    resolver: { dynamicLookup: false },
  });
  await ledger.initialise();
  for (const [i, custodian] of custodians.entries())
    scripted.setKey(keyScope(custodian, namespace), `k${i + 1}`);
  for (const custodian of custodians) await ledger.admin.enableKeyManagement(custodian, namespace);
  return { ledger, scripted };
}

/** The operation table's host for running an operation on `ledger` as the CLI would, locally. */
export function ledgerHost(ledger: Ledger): OperationHost {
  return {
    ledger: async () => ledger,
    store: () => Promise.reject(new Error('not used')),
    actor: undefined,
    reason: undefined,
    signal: new AbortController().signal,
    progress: () => {},
    local: null,
  };
}
