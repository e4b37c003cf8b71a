import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { formatScope, keyScope } from '../../src/domain/identities.js';
import { streamNames } from '../../src/journal/streamNames.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { useSqliteLedgerKeystore } from '../helpers/childLedger.js';
import { checkLedgerInvariants } from '../helpers/ledgerInvariants.js';
import { LineChild } from '../helpers/lineChild.js';
import { scaled, scaledTimeout } from './reliabilityScale.js';

/**
 * rotate-due-keys is resumable after a crash (issue 16): a child process (test/fixtures/ledgerChild.ts)
 * runs rotate-due-keys over many due scopes and is SIGKILLed at a random moment, again and again.
 * After every kill: the store opens, no event is partial or duplicated, no scope has two ACTIVE
 * keys, the projection rebuilt from event 1 equals the resumed one, verify passes
 * (checkLedgerInvariants), and no scope was rotated twice in its due period. Then a run to the end
 * rotates exactly the scopes still due, and a run after it rotates none.
 *
 * Every scope's key is made two days old (the setup ledger's clock is two days behind) under a
 * one-day default policy: every scope is due once, and a key a run made is not due for a day.
 */

const CHILD = fileURLToPath(new URL('../fixtures/ledgerChild.ts', import.meta.url));
const CUST = Buffer.from('tenant-1').toString('base64');
const SCOPES = scaled(200, 400);
const KILLS = scaled(4, 25);
const DAY = 86_400_000;

const keystore = useSqliteLedgerKeystore('keyledger-due-kills-');

type Row = [string, string, string, string | null];

/** ManagedKeyRotated per scope stream, read from the store itself. */
async function rotationsPerStream(store: EventStore): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for await (const e of store.readAll({})) {
    if (e.type === 'ManagedKeyRotated') counts.set(e.streamName, (counts.get(e.streamName) ?? 0) + 1);
  }
  return counts;
}

describe('reliability: rotate-due-keys SIGKILLed at random moments', () => {
  it(`${SCOPES} due scopes, ${KILLS} kills: after each the ledger is whole; a last run finishes exactly what is still due`, {
    timeout: scaledTimeout(240_000, 1_800_000),
  }, async (t) => {
    const path = join(keystore.dir, 'ledger.db');
    const scopes = Array.from({ length: SCOPES }, (_, i) => keyScope(CUST, `table-${i}`));
    {
      const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
      const provider = keystore.provider();
      const ledger = await Ledger.open({
        store,
        provider,
        checkpointEvery: 0,
        now: () => new Date(Date.now() - 2 * DAY),
      });
      try {
        await ledger.initialise();
        for (const scope of scopes) await ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
        await ledger.rotationPolicies.set(
          { kind: 'default' },
          { periodMs: DAY, disableInactiveAfterMs: null },
        );
      } finally {
        await ledger.close();
        await provider.close();
        await store.close();
      }
    }
    const names = streamNames('kl-');
    const streams = new Map(scopes.map((s) => [names.scope(s), formatScope(s)]));
    const start = () =>
      new LineChild(CHILD, [path, keystore.keystorePath], { KEYLEDGER_TEST_PW: keystore.password });
    let midRun = 0;
    let lastRotated = 0;
    const watch = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    t.after(() => watch.close());
    for (let kill = 0; kill < KILLS; kill++) {
      const child = start();
      t.after(() => child.kill());
      await child.ready();
      // A random moment, spread so that every kill lands inside a run and some scopes are left for
      // the last run: once the child has written a random number of the events a share of the
      // remaining rotations takes (a rotation is two: material, then the lifecycle event; polling
      // is not in step with the child, so kills land between the two as well).
      const remaining = SCOPES - lastRotated;
      const target = 1 + Math.floor(Math.random() * Math.max(1, (2 * remaining) / (KILLS - kill + 1)));
      const from = await watch.headPosition();
      child.send('rotate-due 0');
      const deadline = Date.now() + 60_000;
      while (child.running && (await watch.headPosition()) - from < BigInt(target)) {
        assert.ok(Date.now() < deadline, `kill ${kill + 1}: nothing written for a minute: ${child.stderr}`);
        await sleep(Math.floor(Math.random() * 5));
      }
      await child.kill();
      const what = `kill ${kill + 1}`;
      await checkLedgerInvariants(path, () => keystore.provider(), [], what);
      const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
      try {
        const rotations = await rotationsPerStream(store);
        for (const [stream, n] of rotations) {
          assert.ok(streams.has(stream), `${what}: a rotation outside the test's scopes: ${stream}`);
          assert.equal(n, 1, `${what}: ${streams.get(stream)} rotated ${n} times in one due period`);
        }
        if (rotations.size < SCOPES) midRun++;
        lastRotated = rotations.size;
      } finally {
        await store.close();
      }
    }
    t.diagnostic(
      `kills that landed mid-run: ${midRun}; scopes rotated before the last run: ${lastRotated}/${SCOPES}`,
    );
    assert.ok(
      midRun >= 1 && lastRotated < SCOPES,
      'no kill landed in the middle of a run: the test proved nothing',
    );

    // A run to the end rotates exactly the scopes still due; a run after it, none.
    const finisher = start();
    t.after(() => finisher.stop());
    await finisher.ready();
    const before = await (async () => {
      const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
      try {
        return await rotationsPerStream(store);
      } finally {
        await store.close();
      }
    })();
    const stillDue = [...streams]
      .filter(([stream]) => !before.has(stream))
      .map(([, scope]) => scope)
      .sort();
    const last = await finisher.ask<{ results: Row[] }>('rotate-due 0');
    assert.deepEqual(
      last.results
        .filter((r) => r[2] === 'done')
        .map((r) => r[0])
        .sort(),
      stillDue,
      'the last run rotates exactly the scopes still due',
    );
    assert.ok(
      last.results.every((r) => r[2] === 'done'),
      JSON.stringify(last.results.filter((r) => r[2] !== 'done')),
    );
    const again = await finisher.ask<{ results: Row[] }>('rotate-due 0');
    assert.deepEqual(again.results, [], 'a run after that rotates none');
    await finisher.stop();
    await checkLedgerInvariants(path, () => keystore.provider(), [], 'after the last runs');
    const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    try {
      const rotations = await rotationsPerStream(store);
      assert.equal(rotations.size, SCOPES);
      assert.ok([...rotations.values()].every((n) => n === 1));
    } finally {
      await store.close();
    }
  });
});
