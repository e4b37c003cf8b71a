import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { keyScope } from '../../src/domain/identities.js';
import { streamNames } from '../../src/journal/streamNames.js';
import type { KeyInfo } from '../../src/ledger/keyInfo.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type {
  AppendResult,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  Snapshot,
  SnapshotRowChange,
} from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * A snapshot's seal names an event that is never deleted (found by the full crash run,
 * test/reliability/crashSafety.test.ts): a process killed in a rewrap batch after its
 * KeyMaterialWrapped events and before the batch's progress event left a view whose last event was
 * material; the snapshot sealed to it named that event, and when the key was destroyed later (its
 * material stream deleted) and the process was killed before the destruction's own snapshot
 * replaced it, `verify` reported a legitimately made snapshot as `snapshot-event-mismatch`.
 */

const CUST = Buffer.from('tenant-seal').toString('base64');
const NS = 'orders';
const scope = keyScope(CUST, NS);
const names = streamNames('kl-');

class Killed extends Error {}

/** The store as a process that is killed at chosen writes sees it. */
class KillableStore extends ForwardingEventStore {
  /** Appends to the rewrap stream fail once the campaign has started (the first one passes). */
  killRewrapProgress = false;
  /** Snapshot saves fail (killed before the destruction's snapshot was stored). */
  killSnapshots = false;
  #rewrapAppends = 0;

  override append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    if (stream === names.rewrap && this.killRewrapProgress && this.#rewrapAppends++ > 0)
      return Promise.reject(new Killed('killed before the batch progress'));
    return super.append(stream, events, expected);
  }
  override saveSnapshot(name: string, snapshot: Snapshot): Promise<void> {
    return this.killSnapshots ? Promise.reject(new Killed('killed')) : super.saveSnapshot(name, snapshot);
  }
  override saveSnapshotRows(
    name: string,
    header: Snapshot,
    rows: Iterable<SnapshotRowChange>,
    base: bigint | null,
  ): Promise<boolean> {
    return this.killSnapshots
      ? Promise.reject(new Killed('killed'))
      : super.saveSnapshotRows(name, header, rows, base);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'keyledger-seal-destroyed-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const STORES: Record<string, () => EventStore> = {
  memory: () => new MemoryEventStore(),
  sqlite: () => SqliteEventStore.open(join(dir, 'ledger.db'), { pollIntervalMs: 5 }),
};

for (const [kind, makeStore] of Object.entries(STORES)) {
  describe(`a snapshot's seal on ${kind}`, () => {
    it('names an event of a stream that is never deleted, so a destruction leaves it verifiable', async () => {
      const store = makeStore();
      const killable = new KillableStore(store);
      const provider = new ScriptedProvider();
      const ledgers: Ledger[] = [];
      // snapshotEvery 1 (the first process): whatever its view's last event, a snapshot was due at it.
      const open = async (on: EventStore, snapshotEvery?: number) => {
        const ledger = await Ledger.open({
          store: on,
          provider,
          actor: 'test',
          destroyGracePeriodMs: 0,
          snapshotEvery,
        });
        ledgers.push(ledger);
        return ledger;
      };
      try {
        // Given two keys, and a rewrap killed after its KeyMaterialWrapped events and before the
        // batch's progress event: the view's last event is one key's material when it closes
        const first = await open(killable, 1);
        await first.initialise();
        provider.setKey(scope, 'k1');
        await first.admin.enableKeyManagement(CUST, NS);
        provider.setKey(scope, 'k2');
        await first.admin.rotateManagedKey(CUST, NS);
        provider.rotateSystemKey('stk-2');
        assert.equal((await first.admin.rotateSTK()).changed, true);
        killable.killRewrapProgress = true;
        await assert.rejects(first.rewrap.start(), Killed);
        killable.killRewrapProgress = false;
        const [last] = await lastEvents(store, 1);
        assert.ok(last?.streamName.startsWith(`${names.prefix}material-`), 'the last event is material');
        await first.close();
        const stored = await store.loadSnapshot(names.keymetaSnapshot);
        const seal = (stored?.state as { seal?: { stream?: string } } | null)?.seal;
        assert.ok(seal?.stream !== undefined, 'a sealed snapshot is stored');
        const lastKeyId = names.materialKeyOf(last?.streamName ?? '');

        // When that key is destroyed (its material stream deleted; disabled first if ACTIVE) and
        // the process is killed before the destruction's own snapshot is stored
        const second = await open(killable);
        const keys = await second.admin.getManagedKeys(CUST, NS);
        const k1 = keys.find((k) => k.keyId === lastKeyId) as KeyInfo;
        if (k1.state === 'ACTIVE') await second.admin.disableManagedKey(CUST, NS, k1.metadataHash);
        await second.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
        killable.killSnapshots = true;
        // (a kill shows when the save is reached: a save that finds the stored snapshot under an
        // older system key writes nothing and waits for the next interval)
        await second.destruction.destroyDueKeys().catch((error: unknown) => {
          if (!(error instanceof Killed)) throw error;
        });
        await second.close();
        killable.killSnapshots = false;
        assert.equal((await store.readStream(names.material(k1.keyId))).length, 0, 'material deleted');

        // Then the stored snapshot names no material event, opens without a rejection, and verifies
        const third = await open(store);
        assert.deepEqual(
          third.snapshotRejections.map((r) => r.kind),
          [],
        );
        const report = await third.verify();
        assert.deepEqual(
          report.problems.map((p) => [p.kind, p.stream]),
          [],
        );
        assert.equal(names.materialKeyOf(seal.stream), null, `sealed to ${seal.stream}`);
        const key = (await third.admin.getManagedKeys(CUST, NS)).find((k) => k.keyId === k1.keyId);
        assert.equal(key?.state, 'DESTROYED');
      } finally {
        for (const ledger of ledgers) await ledger.close();
        await store.close();
      }
    });
  });
}

async function lastEvents(store: EventStore, count: number) {
  const all = [];
  for await (const recorded of store.readAll()) all.push(recorded);
  return all.slice(-count);
}

/** A store whose appends to scope streams wait at a gate (another process between its two writes). */
class GatedStore extends ForwardingEventStore {
  gate: Promise<void> | null = null;
  reached: () => void = () => undefined;

  override async append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    if (this.gate !== null && names.scopeOf(stream) !== null) {
      this.reached();
      await this.gate;
    }
    return super.append(stream, events, expected);
  }
}

/** A store that runs `before` ahead of its first stream deletion. */
class BeforeDelete extends ForwardingEventStore {
  before: (() => Promise<void>) | null = null;

  override async deleteStream(stream: string): Promise<void> {
    const before = this.before;
    this.before = null;
    if (before !== null) await before();
    return super.deleteStream(stream);
  }
}

describe('the snapshot a destruction takes', () => {
  it('waits for an event that stays when the view last applied another process’s material', async () => {
    const store = new MemoryEventStore();
    const provider = new ScriptedProvider();
    const destroyerStore = new BeforeDelete(store);
    const otherStore = new GatedStore(store);
    const other2 = keyScope(Buffer.from('tenant-other').toString('base64'), NS);
    const open = (on: EventStore) =>
      Ledger.open({ store: on, provider, actor: 'test', destroyGracePeriodMs: 0 });
    const destroyer = await open(destroyerStore);
    let other: Ledger | null = null;
    try {
      // Given k1 due for destruction, and another process that has written a new key's material
      // and not yet the event that introduces it, when the destruction deletes k1's material
      await destroyer.initialise();
      provider.setKey(scope, 'k1');
      const k1 = (await destroyer.admin.enableKeyManagement(CUST, NS)).key as KeyInfo;
      provider.setKey(scope, 'k2');
      await destroyer.admin.rotateManagedKey(CUST, NS);
      await destroyer.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
      other = await open(otherStore);
      const otherLedger = other;
      provider.setKey(other2, 'o1');
      let release: () => void = () => undefined;
      otherStore.gate = new Promise((done) => {
        release = done;
      });
      const reached = new Promise<void>((done) => {
        otherStore.reached = done;
      });
      let enabling: Promise<unknown> = Promise.resolve();
      let materialAt = -1n;
      destroyerStore.before = async () => {
        enabling = otherLedger.admin.enableKeyManagement(other2.custodian, NS);
        await reached;
        materialAt = await store.headPosition();
        await destroyer.waitForPosition(materialAt);
      };
      assert.equal((await destroyer.destruction.destroyDueKeys()).destroyed.length, 1);
      const [material] = (await lastEventsUpTo(store, materialAt)).slice(-1);
      assert.ok(
        names.materialKeyOf(material?.streamName ?? '') !== null,
        'the destroyer applied material last',
      );

      // Then no snapshot is sealed to that material event: the destruction's snapshot is taken at
      // the next event that stays (its own checkpoint, or the other process's scope event)
      const stored = async () => {
        const snapshot = await store.loadSnapshot(names.keymetaSnapshot);
        const stream = (snapshot?.state as { seal?: { stream?: string } } | null)?.seal?.stream ?? '';
        return { position: snapshot?.position ?? 0n, stream };
      };
      for (let i = 0; i < 100 && (await stored()).position <= materialAt; i++)
        await new Promise((done) => setTimeout(done, 20));
      const taken = await stored();
      assert.ok(taken.position > materialAt, `snapshot at ${taken.position}, material at ${materialAt}`);
      assert.equal(names.materialKeyOf(taken.stream), null, `sealed to ${taken.stream}`);
      otherStore.gate = null;
      release();
      await enabling;
    } finally {
      await other?.close();
      await destroyer.close();
      await store.close();
    }
  });
});

async function lastEventsUpTo(store: EventStore, position: bigint) {
  const all = [];
  for await (const recorded of store.readAll()) if (recorded.position <= position) all.push(recorded);
  return all;
}
