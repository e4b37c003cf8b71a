import assert from 'node:assert/strict';
import { Ledger } from '../../src/ledger/ledger.js';
import type { ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import type { RecordedEvent, Snapshot } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';

/**
 * The crash-safety checks (issue 15, part 1) as one function, for every suite that kills a process
 * writing a sqlite ledger (crashSafety.test.ts: an admin child; serveKilled.test.ts: `serve` under
 * load): the store opens; no event is partial or duplicated; every acknowledged write is in the
 * history; the projection resumed from the snapshot equals the one rebuilt from event 1; no scope
 * has two ACTIVE keys; verify passes.
 */

/** The store as a ledger that never saw a snapshot: its projection is rebuilt from event 1. */
class NoSnapshots extends ForwardingEventStore {
  override async loadSnapshot(): Promise<Snapshot | null> {
    return null;
  }
  override async saveSnapshot(): Promise<void> {}
  // Nor does it write one: a row snapshot saved by this ledger while the resumed one verifies would
  // be read half old, half new by verify (header, then rows in pages) and reported as a mismatch.
  override async saveSnapshotRows(): Promise<boolean> {
    return false;
  }
}

/**
 * What a ledger's projection says, in a canonical order (maps may fill in another order). Every field
 * is compared, a DESTROYED key's stkIdentity too: ManagedKeyDestroyed carries it since the
 * snapshot/rebuild divergence was fixed (BENCHMARKS.md, test/ledger/destroyedStkIdentity.test.ts).
 */
export function ledgerView(ledger: Ledger): unknown {
  const scopes = ledger.admin
    .listScopes()
    .map((scope) => ({
      ...scope,
      keys: [...scope.keys].sort((a, b) => a.keyId.localeCompare(b.keyId)),
    }))
    .sort((a, b) => `${a.custodian}:${a.namespace}`.localeCompare(`${b.custodian}:${b.namespace}`));
  return JSON.parse(JSON.stringify({ scopes, systemKeys: ledger.systemKeys() }));
}

/** The path of the first place two JSON values differ, with both values, or null. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return a === b ? null : `${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  }
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const found = firstDifference(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      `${path}.${key}`,
    );
    if (found !== null) return found;
  }
  return null;
}

/** An acknowledged write with what it was, so a missing one is named in the failure. */
export interface AcknowledgedWrite {
  readonly op: string;
  /** Null for an operation that wrote nothing (checked by nothing). */
  readonly position: string | null;
}

export interface InvariantReport {
  readonly events: number;
  /** The resumed ledger's view (ledgerView), for comparing with what a restarted process serves. */
  readonly view: unknown;
}

/**
 * Every check on the sqlite file at `path`; `provider` makes a fresh provider per ledger opened (each
 * closed at the end). `acknowledged` holds positions (decimal strings) or acknowledged operations.
 * Fails with `what` in the message.
 */
export async function checkLedgerInvariants(
  path: string,
  provider: () => ManagedKeyProvider,
  acknowledged: readonly (string | AcknowledgedWrite)[],
  what: string,
): Promise<InvariantReport> {
  const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
  const ledgers: Ledger[] = [];
  const providers: ManagedKeyProvider[] = [];
  const fresh = () => {
    const made = provider();
    providers.push(made);
    return made;
  };
  try {
    const events: RecordedEvent[] = [];
    for await (const event of store.readAll()) events.push(event);
    assert.equal(new Set(events.map((e) => e.eventId)).size, events.length, `${what}: a duplicated event`);
    const revisions = new Map<string, bigint>();
    for (const event of events) {
      const expected = revisions.get(event.streamName) ?? 0n;
      assert.equal(event.revision, expected, `${what}: ${event.streamName} has a gap or a partial append`);
      revisions.set(event.streamName, expected + 1n);
    }
    const positions = new Set(events.map((e) => e.position.toString()));
    for (const ack of acknowledged) {
      const { op, position } = typeof ack === 'string' ? { op: 'write', position: ack } : ack;
      if (position === null) continue;
      assert.ok(positions.has(position), `${what}: acknowledged ${op} at ${position} is missing`);
    }
    const resumed = await Ledger.open({ store, provider: fresh(), actor: 'checker' });
    ledgers.push(resumed);
    const rebuilt = await Ledger.open({ store: new NoSnapshots(store), provider: fresh(), actor: 'checker' });
    ledgers.push(rebuilt);
    const head = await store.headPosition();
    await resumed.waitForPosition(head);
    await rebuilt.waitForPosition(head);
    const view = ledgerView(resumed);
    const difference = firstDifference(view, ledgerView(rebuilt));
    assert.equal(difference, null, `${what}: snapshot and rebuild disagree at ${difference}`);
    for (const scope of resumed.admin.listScopes()) {
      const active = scope.keys.filter((k) => k.state === 'ACTIVE').length;
      assert.ok(active <= 1, `${what}: ${scope.namespace} has ${active} ACTIVE keys`);
    }
    const report = await resumed.verify();
    assert.equal(
      report.ok,
      true,
      `${what}: verify: ${JSON.stringify(report.problems.slice(0, 3), (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
    );
    return { events: events.length, view };
  } finally {
    for (const ledger of ledgers) await ledger.close();
    for (const made of providers) await made.close();
    await store.close();
  }
}
