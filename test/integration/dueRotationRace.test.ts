import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatScope, keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ChildLedger, useSqliteLedgerKeystore } from '../helpers/childLedger.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const SCOPES = ['a', 'b', 'c', 'd', 'e', 'f'].map((ns) => keyScope(CUST, ns));

const keystore = useSqliteLedgerKeystore('keyledger-due-race-');

type Row = [string, string, string, string | null];

describe('rotate-due-keys in two processes on one sqlite store', () => {
  it('racing runs make exactly one rotation per due scope; the loser finds each not due', async (t) => {
    const path = join(keystore.dir, 'ledger.db');
    const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    const ledger = await Ledger.open({ store, provider: keystore.provider(), checkpointEvery: 0 });
    t.after(async () => {
      await ledger.close();
      await store.close();
    });
    await ledger.initialise();
    for (const scope of SCOPES) await ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
    await ledger.rotationPolicies.set({ kind: 'default' }, { periodMs: 1000, disableInactiveAfterMs: null });
    // Scope f has a long policy of its own: not due.
    const notDue = keyScope(CUST, 'f');
    await ledger.rotationPolicies.set(
      { kind: 'scope', scope: notDue },
      { periodMs: 86_400_000, disableInactiveAfterMs: null },
    );
    const children = await Promise.all(
      [1, 2].map(() => ChildLedger.start(path, keystore.keystorePath, keystore.password)),
    );
    t.after(() => Promise.all(children.map((c) => c.stop())));
    await sleep(1100);
    const head = await store.headPosition();
    await Promise.all(children.map((c) => c.ask(`wait ${head}`)));
    // Both start at the same moment.
    const go = Date.now() + 300;
    const answers = await Promise.all(children.map((c) => c.ask<{ results: Row[] }>(`rotate-due ${go}`)));
    await ledger.waitForPosition(await store.headPosition());
    const due = SCOPES.slice(0, 5).map(formatScope);
    for (const scope of SCOPES) {
      const rotations = (await ledger.history(scope.custodian, scope.namespace)).filter(
        (e) => e.type === 'ManagedKeyRotated',
      );
      const expected = formatScope(scope) === formatScope(notDue) ? 0 : 1;
      assert.equal(rotations.length, expected, `${formatScope(scope)}: rotations`);
    }
    // Each due scope was done by exactly one process; the other (if it got that far) found it not due.
    for (const scope of due) {
      const outcomes = answers.flatMap((a) => a.results.filter((r) => r[0] === scope).map((r) => r[2]));
      assert.equal(outcomes.filter((o) => o === 'done').length, 1, `${scope}: ${outcomes.join(',')}`);
      assert.ok(
        outcomes.every((o) => o === 'done' || o === 'not-due'),
        `${scope}: ${outcomes.join(',')}`,
      );
    }
  });
});
