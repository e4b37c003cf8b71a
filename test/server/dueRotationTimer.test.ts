import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { keyScope } from '../../src/domain/identities.js';
import { resolveServerConfig, serverSectionSchema } from '../../src/host/serverConfig.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { DUE_ROTATION_ACTOR, DueRotationTimer } from '../../src/server/dueRotationTimer.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const scope = keyScope(Buffer.from('tenant-1').toString('base64'), 'orders');

describe('the rotate-due-keys timer of keyledger serve', () => {
  it('runs at start and then every interval, logs what it did, and stops cleanly', async (t) => {
    const provider = new ScriptedProvider();
    let clock = Date.parse('2026-01-01T00:00:00.000Z');
    const ledger = await Ledger.open({
      store: new MemoryEventStore(),
      provider,
      checkpointEvery: 0,
      now: () => new Date(clock),
    });
    t.after(() => ledger.close());
    await ledger.initialise();
    provider.setKey(scope, 'k1');
    await ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
    await ledger.rotationPolicies.set(
      { kind: 'scope', scope },
      { periodMs: 60_000, disableInactiveAfterMs: null },
    );
    clock += 60_000;
    provider.setKey(scope, 'k2');
    const lines: Record<string, unknown>[] = [];
    const timer = new DueRotationTimer({ ledger, everyMs: 20, log: (line) => lines.push(line) });
    timer.start();
    const until = Date.now() + 5000;
    while (lines.length === 0 && Date.now() < until) await sleep(10);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.msg, 'rotate-due-keys');
    assert.equal(lines[0]?.done, 1);
    // Later runs find nothing due (the clock stands still) and log nothing…
    await sleep(100);
    assert.equal(lines.length, 1);
    // …until the period has passed again.
    clock += 60_000;
    provider.setKey(scope, 'k3');
    while (lines.length === 1 && Date.now() < until + 5000) await sleep(10);
    await timer.stop();
    const history = await ledger.history(scope.custodian, scope.namespace);
    const rotations = history.filter((e) => e.type === 'ManagedKeyRotated');
    assert.equal(rotations.length, 2);
    assert.ok(rotations.every((e) => e.actor === DUE_ROTATION_ACTOR));
    const after = lines.length;
    await sleep(60);
    assert.equal(lines.length, after, 'nothing runs after stop');
  });
});

describe('server.rotateDueKeys in the config', () => {
  const resolved = (section: unknown) =>
    resolveServerConfig(serverSectionSchema.parse(section), '/tmp').rotateDueKeysEveryMs;

  it('hourly by default; "off" turns it off; { every } takes a duration of 1s or more', () => {
    assert.equal(resolved({}), 3_600_000);
    assert.equal(resolved({ rotateDueKeys: 'off' }), null);
    assert.equal(resolved({ rotateDueKeys: { every: '90s' } }), 90_000);
    for (const bad of [{ every: '0s' }, { every: '1 hour' }, 'on', { every: '1h', extra: 1 }]) {
      assert.equal(serverSectionSchema.safeParse({ rotateDueKeys: bad }).success, false, JSON.stringify(bad));
    }
  });
});
