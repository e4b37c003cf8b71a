import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { formatScope, keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const DAY = 86_400_000;
const T1 = Buffer.from('tenant-1').toString('base64');
const orders = keyScope(T1, 'orders');
const billing = keyScope(T1, 'billing');

/** A ledger on a memory store with a clock the test moves. */
async function setup() {
  const store = new MemoryEventStore();
  const provider = new ScriptedProvider();
  let clock = Date.parse('2026-01-01T00:00:00.000Z');
  const ledger = await Ledger.open({
    store,
    provider,
    actor: 'tester',
    checkpointEvery: 0,
    now: () => new Date(clock),
  });
  await ledger.initialise();
  for (const scope of [orders, billing]) {
    provider.setKey(scope, `${scope.namespace}-1`);
    await ledger.admin.enableKeyManagement(scope.custodian, scope.namespace);
  }
  return {
    store,
    provider,
    ledger,
    advance: (ms: number) => {
      clock += ms;
    },
    head: () => store.headPosition(),
    [Symbol.asyncDispose]: () => ledger.close(),
  };
}

async function rejectsCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isKeyledgerError(error) && error.code === code);
}

describe('rotation policies on a ledger', () => {
  it('set, change and clear are events with actor and reason; the history shows each change', async () => {
    await using t = await setup();
    const set = await t.ledger.rotationPolicies.set(
      { kind: 'scope', scope: orders },
      { periodMs: 90 * DAY, disableInactiveAfterMs: null },
      { actor: 'alice', reason: 'PCI 3.6.4' },
    );
    assert.equal(set.changed, true);
    assert.equal(set.policy?.setBy, 'alice');
    const again = await t.ledger.rotationPolicies.set(
      { kind: 'scope', scope: orders },
      { periodMs: 90 * DAY, disableInactiveAfterMs: null },
    );
    assert.equal(again.changed, false, 'the same terms: nothing written');
    await t.ledger.rotationPolicies.set(
      { kind: 'default' },
      { periodMs: 30 * DAY, disableInactiveAfterMs: null },
    );
    await t.ledger.rotationPolicies.clear(
      { kind: 'scope', scope: orders },
      { actor: 'bob', reason: 'follow the default' },
    );
    const history = await t.ledger.rotationPolicies.history();
    assert.deepEqual(
      history.map((e) => [
        e.type,
        e.target,
        e.actor,
        e.reason,
        e.from?.periodMs ?? null,
        e.to?.periodMs ?? null,
      ]),
      [
        ['RotationPolicySet', formatScope(orders), 'alice', 'PCI 3.6.4', null, 90 * DAY],
        ['RotationPolicySet', '@default', 'tester', null, null, 30 * DAY],
        ['RotationPolicyCleared', formatScope(orders), 'bob', 'follow the default', 90 * DAY, null],
      ],
    );
    assert.deepEqual(
      (await t.ledger.rotationPolicies.history({ kind: 'default' })).map((e) => e.target),
      ['@default'],
    );
    assert.deepEqual(
      (await t.ledger.rotationPolicies.list()).map((p) => [p.target, p.periodMs]),
      [['@default', 30 * DAY]],
    );
  });

  it('refused commands write nothing (the store head is unchanged)', async () => {
    await using t = await setup();
    const head = await t.head();
    await rejectsCode(
      t.ledger.rotationPolicies.clear({ kind: 'scope', scope: orders }),
      'ERR_ROTATION_POLICY_NOT_FOUND',
    );
    await rejectsCode(
      t.ledger.rotationPolicies.set({ kind: 'system' }, { periodMs: DAY, disableInactiveAfterMs: DAY }),
      'ERR_INVALID_ARGUMENT',
    );
    await rejectsCode(
      t.ledger.rotationPolicies.set({ kind: 'default' }, { periodMs: 10, disableInactiveAfterMs: null }),
      'ERR_INVALID_ARGUMENT',
    );
    assert.equal(await t.head(), head);
  });

  it('show-key-status’s data: the policy followed (own or default), next rotation due, key ages', async () => {
    await using t = await setup();
    assert.equal((await t.ledger.dueRotations.scopeRotation(orders)).policy, null);
    await t.ledger.rotationPolicies.set(
      { kind: 'default' },
      { periodMs: 30 * DAY, disableInactiveAfterMs: null },
    );
    t.advance(DAY);
    const r = await t.ledger.dueRotations.scopeRotation(orders);
    assert.equal(r.policy?.source, 'default');
    assert.equal(r.activeSince, '2026-01-01T00:00:00.000Z');
    assert.equal(r.nextRotationDueAt, '2026-01-31T00:00:00.000Z');
    assert.equal(r.rotationDue, false);
    assert.deepEqual(Object.values(r.keyAgesMs), [DAY]);
  });
});

describe('rotate-due-keys', () => {
  it('rotates exactly the due scopes; a re-run is a no-op; --dry-run lists and writes nothing', async () => {
    await using t = await setup();
    await t.ledger.rotationPolicies.set(
      { kind: 'scope', scope: orders },
      { periodMs: 7 * DAY, disableInactiveAfterMs: null },
    );
    await t.ledger.rotationPolicies.set(
      { kind: 'scope', scope: billing },
      { periodMs: 30 * DAY, disableInactiveAfterMs: null },
    );
    t.advance(7 * DAY);
    t.provider.setKey(orders, 'orders-2');
    t.provider.setKey(billing, 'billing-2');
    const head = await t.head();
    const dry = await t.ledger.dueRotations.run({ dryRun: true });
    assert.deepEqual(
      dry.results.map((r) => [r.kind, r.kind === 'rotate-stk' ? '@stk' : r.scope, r.outcome]),
      [['rotate-key', formatScope(orders), 'planned']],
    );
    assert.equal(await t.head(), head, 'a dry run writes nothing');
    const run = await t.ledger.dueRotations.run({ actor: 'cron' });
    assert.deepEqual(
      run.results.map((r) => r.outcome),
      ['done'],
    );
    const keys = await t.ledger.admin.getManagedKeys(orders.custodian, orders.namespace);
    assert.deepEqual(
      keys.map((k) => k.state),
      ['INACTIVE', 'ACTIVE'],
    );
    const rotated = (await t.ledger.history(orders.custodian, orders.namespace)).at(-1);
    assert.equal(rotated?.type, 'ManagedKeyRotated');
    assert.equal(rotated?.actor, 'cron');
    assert.equal(rotated?.reason, 'due under the rotation policy');
    assert.equal(
      (await t.ledger.admin.getManagedKeys(billing.custodian, billing.namespace)).length,
      1,
      'billing is not due',
    );
    const afterRun = await t.head();
    const rerun = await t.ledger.dueRotations.run();
    assert.deepEqual(rerun.results, [], 'nothing is due any more');
    assert.equal(await t.head(), afterRun);
  });

  it('a provider failure on one scope is reported; the others rotate; the next run retries it', async () => {
    await using t = await setup();
    await t.ledger.rotationPolicies.set({ kind: 'default' }, { periodMs: DAY, disableInactiveAfterMs: null });
    t.advance(DAY);
    t.provider.setKey(orders, 'orders-2');
    t.provider.setKey(billing, 'billing-2');
    // The KMS fails for orders only.
    const original = t.provider.getManagedKey.bind(t.provider);
    t.provider.getManagedKey = async (scope) => {
      if (scope.namespace === 'orders') throw new Error('KMS down');
      return original(scope);
    };
    const run = await t.ledger.dueRotations.run();
    const byScope = Object.fromEntries(
      run.results.map((r) => [r.kind === 'rotate-stk' ? '@stk' : r.scope, [r.outcome, r.code]]),
    );
    assert.equal(run.failed, 1);
    assert.deepEqual(byScope[formatScope(billing)], ['done', null]);
    assert.equal(byScope[formatScope(orders)]?.[0], 'failed');
    // Nothing was recorded for orders: its key stays ACTIVE and valid (SEMANTICS.md).
    assert.deepEqual(
      (await t.ledger.admin.getManagedKeys(orders.custodian, orders.namespace)).map((k) => k.state),
      ['ACTIVE'],
    );
    t.provider.getManagedKey = original;
    const retry = await t.ledger.dueRotations.run();
    assert.deepEqual(
      retry.results.map((r) => [r.kind === 'rotate-stk' ? '@stk' : r.scope, r.outcome]),
      [[formatScope(orders), 'done']],
    );
  });

  it('a provider with no new key (same key, or FAILED): unchanged, nothing recorded, still due', async () => {
    await using t = await setup();
    await t.ledger.rotationPolicies.set(
      { kind: 'scope', scope: orders },
      { periodMs: DAY, disableInactiveAfterMs: null },
    );
    t.advance(DAY);
    const head = await t.head();
    const run = await t.ledger.dueRotations.run();
    assert.deepEqual(
      run.results.map((r) => r.outcome),
      ['unchanged'],
    );
    t.provider.setKey(orders, 'orders-x', 'FAILED');
    assert.deepEqual(
      (await t.ledger.dueRotations.run()).results.map((r) => r.outcome),
      ['unchanged'],
    );
    assert.equal(await t.head(), head);
  });

  it('INACTIVE keys past the policy’s age are disabled, once', async () => {
    await using t = await setup();
    await t.ledger.rotationPolicies.set(
      { kind: 'scope', scope: orders },
      { periodMs: 100 * DAY, disableInactiveAfterMs: 10 * DAY },
    );
    t.provider.setKey(orders, 'orders-2');
    await t.ledger.admin.rotateManagedKey(orders.custodian, orders.namespace);
    t.advance(10 * DAY);
    const run = await t.ledger.dueRotations.run();
    assert.deepEqual(
      run.results.map((r) => [r.kind, r.outcome]),
      [['disable-key', 'done']],
    );
    assert.deepEqual(
      (await t.ledger.admin.getManagedKeys(orders.custodian, orders.namespace)).map((k) => k.state),
      ['DISABLED', 'ACTIVE'],
    );
    assert.deepEqual((await t.ledger.dueRotations.run()).results, []);
  });

  it('the system key’s policy: a new STK is recorded when due', async () => {
    await using t = await setup();
    await t.ledger.rotationPolicies.set(
      { kind: 'system' },
      { periodMs: 365 * DAY, disableInactiveAfterMs: null },
    );
    t.advance(365 * DAY);
    t.provider.rotateSystemKey('stk-2');
    const run = await t.ledger.dueRotations.run();
    assert.deepEqual(
      run.results.map((r) => [r.kind, r.outcome]),
      [['rotate-stk', 'done']],
    );
    assert.equal(t.ledger.systemKeys().length, 2);
    assert.deepEqual((await t.ledger.dueRotations.run()).results, []);
  });

  it('a rotation another writer made after the plan: the re-check inside the write makes it not-due', async () => {
    await using t = await setup();
    await t.ledger.rotationPolicies.set(
      { kind: 'scope', scope: orders },
      { periodMs: DAY, disableInactiveAfterMs: null },
    );
    t.advance(DAY);
    t.provider.setKey(orders, 'orders-2');
    // Another writer rotates between the plan and the write: simulated by rotating when the
    // provider is first asked by the due run.
    const original = t.provider.getManagedKey.bind(t.provider);
    let interposed = false;
    t.provider.getManagedKey = async (scope) => {
      if (!interposed) {
        interposed = true;
        t.provider.getManagedKey = original;
        await t.ledger.admin.rotateManagedKey(scope.custodian, scope.namespace, { actor: 'other' });
        t.provider.setKey(orders, 'orders-3');
      }
      return original(scope);
    };
    const run = await t.ledger.dueRotations.run();
    assert.deepEqual(
      run.results.map((r) => r.outcome),
      ['not-due'],
    );
    const history = await t.ledger.history(orders.custodian, orders.namespace);
    assert.equal(history.filter((e) => e.type === 'ManagedKeyRotated').length, 1, 'one rotation');
  });
});
