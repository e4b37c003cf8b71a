import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import { parseLedgerEvent } from '../../src/domain/events.js';
import type { KeyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type {
  ManagedKeyData,
  ManagedKeyProvider,
  WrappedKeyMaterial,
} from '../../src/providers/managedKeyProvider.js';
import type { EventStore, EventToAppend, ExpectedRevision } from '../../src/store/eventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');

/** A memory store that fails one chosen append, as a crash between two writes would. */
class InterruptibleStore extends MemoryEventStore {
  failWhen: ((stream: string, events: readonly EventToAppend[]) => boolean) | null = null;

  override async append(stream: string, events: readonly EventToAppend[], expected: ExpectedRevision) {
    if (this.failWhen?.(stream, events)) {
      this.failWhen = null;
      throw new Error('injected crash');
    }
    return super.append(stream, events, expected);
  }
}

/** The system keys of a ScriptedProvider, recording which STKs were fetched to unwrap with. */
class StkTracker implements ManagedKeyProvider {
  readonly kind = 'stk-tracker';
  readonly fetched: string[] = [];
  /** When set, getSystemKey answers this handle (e.g. a retired key under a new name). */
  currentOverride: (() => Promise<SystemKeyHandle>) | null = null;
  constructor(readonly inner: ScriptedProvider) {}
  getSystemKey(): Promise<SystemKeyHandle> {
    return this.currentOverride?.() ?? this.inner.getSystemKey();
  }
  async unwrapSystemKey(metadata: string): Promise<SystemKeyHandle> {
    const handle = await this.inner.unwrapSystemKey(metadata);
    this.fetched.push(handle.identity);
    return handle;
  }
  getManagedKey(scope: KeyScope): Promise<ManagedKeyData | null> {
    return this.inner.getManagedKey(scope);
  }
  unwrapKey(metadata: string, material: WrappedKeyMaterial | null): Promise<ManagedKeyData> {
    const inner: ManagedKeyProvider = this.inner;
    return inner.unwrapKey(metadata, material);
  }
  async close(): Promise<void> {}
}

interface Setup {
  readonly store: InterruptibleStore;
  readonly stks: ScriptedProvider;
  readonly tracker: StkTracker;
  readonly ledger: Ledger;
  readonly namespaces: readonly string[];
  open(): Promise<Ledger>;
}

/** A ledger with generated DEKs under scripted STKs, and `scopes` enabled scopes. */
async function setup(scopes: number, options: { snapshotEvery?: number } = {}): Promise<Setup> {
  const store = new InterruptibleStore();
  const stks = new ScriptedProvider();
  const tracker = new StkTracker(stks);
  const open = () =>
    Ledger.open({
      store,
      provider: new GeneratedKeyProvider({ systemKeys: tracker }),
      actor: 'test',
      snapshotEvery: options.snapshotEvery,
      // Generated keys: resolving an unknown scope must not mint one.
      resolver: { dynamicLookup: false },
    });
  const ledger = await open();
  await ledger.initialise();
  const namespaces = Array.from({ length: scopes }, (_, i) => `ns-${String(i).padStart(2, '0')}`);
  for (const ns of namespaces) await ledger.admin.enableKeyManagement(CUST, ns);
  return { store, stks, tracker, ledger, namespaces, open };
}

/** Records a new STK (`name`) as the ledger's current one; returns its identity. */
async function rotateStk(s: Setup, name: string, ledger = s.ledger): Promise<string> {
  s.stks.rotateSystemKey(name);
  const change = await ledger.admin.rotateSTK();
  assert.equal(change.changed, true);
  return change.identity;
}

function allKeys(ledger: Ledger) {
  return ledger.admin.listScopes().flatMap((s) => s.keys);
}

async function materialEvents(store: EventStore, ledger: Ledger, keyId: string) {
  return (await store.readStream(ledger.streamNames.material(keyId as never))).map(parseLedgerEvent);
}

async function rewrapEvents(store: EventStore, ledger: Ledger) {
  return (await store.readStream(ledger.streamNames.rewrap)).map(parseLedgerEvent);
}

async function rejectsWithCode(
  call: () => Promise<unknown>,
  code: string,
  details?: Record<string, unknown>,
) {
  await assert.rejects(call, (error: { code?: string; details?: Record<string, unknown> }) => {
    assert.equal(error.code, code);
    for (const [k, v] of Object.entries(details ?? {}))
      assert.deepEqual(error.details?.[k], v, `details.${k}`);
    return true;
  });
}

describe('rewrap campaigns', () => {
  it('re-wraps every key under the latest STK; keys still resolve and old data decrypts', async () => {
    const s = await setup(5);
    const { ledger, store } = s;
    // An INACTIVE and a DISABLED key have material too: both move.
    await ledger.admin.rotateManagedKey(CUST, 'ns-00');
    const [inactive] = await ledger.admin.getManagedKeys(CUST, 'ns-00');
    await ledger.admin.rotateManagedKey(CUST, 'ns-01');
    const [toDisable] = await ledger.admin.getManagedKeys(CUST, 'ns-01');
    await ledger.admin.disableManagedKey(CUST, 'ns-01', toDisable?.metadataHash ?? '');
    const plaintexts = s.namespaces.map((ns) => Buffer.from(`secret of ${ns}`));
    const ciphertexts = await Promise.all(
      s.namespaces.map((ns, i) =>
        ledger.envelope.encrypt(plaintexts[i] as Buffer, { custodian: CUST, namespaces: [ns] }),
      ),
    );
    const oldStk = ledger.systemKeys()[0]?.identity;
    const before = new Map(allKeys(ledger).map((k) => [k.keyId, k]));
    assert.equal(before.size, 7);

    const newStk = await rotateStk(s, 'stk-2');
    assert.equal((await ledger.rewrap.status()).pending, 7);
    const progress: number[] = [];
    const result = await ledger.rewrap.start({
      batchSize: 3,
      reason: 'stk-2 rollout',
      onProgress: (p) => void progress.push(p.done),
    });

    assert.equal(result.status, 'finished');
    assert.equal(result.remaining, 0);
    assert.deepEqual(
      [result.campaign?.keys, result.campaign?.done, result.campaign?.rewrapped, result.campaign?.skipped],
      [7, 7, 7, 0],
    );
    assert.deepEqual(progress, [3, 6, 7]);
    for (const key of allKeys(ledger)) {
      assert.equal(key.stkIdentity, newStk, `key ${key.keyId} is under the new STK`);
      assert.equal(key.state, before.get(key.keyId)?.state, 'states are untouched');
      assert.equal(key.checksum, before.get(key.keyId)?.checksum, 'same DEK');
      const material = await materialEvents(store, ledger, key.keyId);
      assert.deepEqual(
        material.map((e) => e.type === 'KeyMaterialWrapped' && e.data.stkIdentity),
        [oldStk, newStk],
      );
      const rewrapped = material[1];
      assert.equal(rewrapped?.meta.causationId, result.campaign?.campaignId);
      assert.equal(rewrapped?.meta.reason, 'stk-2 rollout');
      assert.notEqual(
        rewrapped?.type === 'KeyMaterialWrapped' && rewrapped.data.wrapped,
        material[0]?.type === 'KeyMaterialWrapped' && material[0].data.wrapped,
      );
    }
    assert.equal(before.get(inactive?.keyId ?? ('' as never))?.state, 'INACTIVE');
    const campaignEvents = await rewrapEvents(store, ledger);
    assert.deepEqual(
      campaignEvents.map((e) => e.type),
      ['RewrapStarted', 'RewrapProgressed', 'RewrapProgressed', 'RewrapProgressed', 'RewrapFinished'],
    );
    const status = await ledger.rewrap.status();
    assert.equal(status.pending, 0);
    assert.deepEqual(
      status.systemKeys.map((k) => [k.identity, k.current, k.keys]),
      [
        [oldStk, false, 0],
        [newStk, true, 7],
      ],
    );
    assert.equal(status.open, null);
    assert.equal(status.campaigns[0]?.finished, true);

    // Old data decrypts, here and in a fresh process (no L1) that unwraps from the new material.
    for (const [i, ct] of ciphertexts.entries()) {
      assert.deepEqual(await ledger.envelope.decrypt(ct), plaintexts[i]);
    }
    const fresh = await s.open();
    s.tracker.fetched.length = 0;
    for (const [i, ct] of ciphertexts.entries()) {
      assert.deepEqual(await fresh.envelope.decrypt(ct), plaintexts[i]);
    }
    assert.ok(!s.tracker.fetched.includes(oldStk ?? ''), 'the old STK is not needed any more');
    // New data still encrypts under the scopes' ACTIVE keys.
    const again = await fresh.envelope.encrypt(Buffer.from('new'), {
      custodian: CUST,
      namespaces: ['ns-04'],
    });
    assert.deepEqual(await ledger.envelope.decrypt(again), Buffer.from('new'));
    await fresh.close();
    await ledger.close();
  });

  it('a re-run after a finished campaign is up to date and writes nothing', async () => {
    const s = await setup(3);
    await rotateStk(s, 'stk-2');
    assert.equal((await s.ledger.rewrap.start()).status, 'finished');
    const head = await s.store.headPosition();
    const again = await s.ledger.rewrap.start();
    assert.deepEqual(again, { status: 'up-to-date', campaign: null, remaining: 0 });
    assert.equal(await s.store.headPosition(), head);
    // Nothing to do from the start (no rotation yet): nothing recorded either.
    const t = await setup(2);
    const tHead = await t.store.headPosition();
    assert.equal((await t.ledger.rewrap.start()).status, 'up-to-date');
    assert.equal(await t.store.headPosition(), tHead);
    await t.ledger.close();
    await s.ledger.close();
  });

  it('an interrupted campaign resumes after its checkpoint without redoing or skipping keys', async () => {
    const s = await setup(7);
    const { ledger, store } = s;
    const newStk = await rotateStk(s, 'stk-2');
    let batches = 0;
    await assert.rejects(
      ledger.rewrap.start({
        batchSize: 2,
        onProgress: () => {
          if (++batches === 2) throw new Error('operator pressed ctrl-c');
        },
      }),
      /ctrl-c/,
    );
    const status = await ledger.rewrap.status();
    const open = status.open;
    assert.ok(open !== null);
    assert.deepEqual([open.done, open.rewrapped, open.keys], [4, 4, 7]);
    assert.equal(status.pending, 3);
    const order = allKeys(ledger)
      .map((k) => k.keyId)
      .sort();
    assert.equal(open.lastKeyId, order[3]);
    for (const [i, keyId] of order.entries()) {
      assert.equal((await materialEvents(store, ledger, keyId)).length, i < 4 ? 2 : 1, `key ${i}`);
    }

    // Another start is refused while this one is unfinished.
    await rejectsWithCode(() => ledger.rewrap.start(), 'ERR_REWRAP_IN_PROGRESS', {
      campaignId: open.campaignId,
    });

    // Resumed in another process.
    const other = await s.open();
    const resumed = await other.rewrap.resume(open.campaignId, { batchSize: 2 });
    assert.equal(resumed.status, 'finished');
    assert.deepEqual(
      [resumed.campaign?.done, resumed.campaign?.rewrapped, resumed.campaign?.skipped],
      [7, 7, 0],
    );
    for (const keyId of order) {
      const material = await materialEvents(store, ledger, keyId);
      assert.equal(material.length, 2, 'each key re-wrapped exactly once');
      assert.equal(material[1]?.type === 'KeyMaterialWrapped' && material[1].data.stkIdentity, newStk);
    }
    const progressed = (await rewrapEvents(store, ledger)).flatMap((e) =>
      e.type === 'RewrapProgressed' ? [e.data.lastKeyId] : [],
    );
    assert.deepEqual(progressed, [order[1], order[3], order[5], order[6]]);
    await rejectsWithCode(() => other.rewrap.resume(open.campaignId), 'ERR_REWRAP_FINISHED');
    await rejectsWithCode(
      () => other.rewrap.resume('00000000-0000-4000-8000-000000000000'),
      'ERR_REWRAP_NOT_FOUND',
    );
    await rejectsWithCode(() => other.rewrap.resume('not-a-campaign'), 'ERR_INVALID_ARGUMENT');
    await other.close();
    await ledger.close();
  });

  it('keys re-wrapped before their checkpoint was lost are not re-wrapped again on resume', async () => {
    const s = await setup(5);
    const { ledger, store } = s;
    await rotateStk(s, 'stk-2');
    // The first checkpoint is lost: its three keys were re-wrapped but the campaign does not know.
    store.failWhen = (_stream, events) => events.some((e) => e.type === 'RewrapProgressed');
    await assert.rejects(ledger.rewrap.start({ batchSize: 3 }), /injected crash/);
    const open = (await ledger.rewrap.status()).open;
    assert.ok(open !== null);
    assert.equal(open.lastKeyId, null);
    const order = allKeys(ledger)
      .map((k) => k.keyId)
      .sort();
    const counts = async () =>
      Promise.all(order.map(async (k) => (await materialEvents(store, ledger, k)).length));
    assert.deepEqual(await counts(), [2, 2, 2, 1, 1]);

    const resumed = await ledger.rewrap.resume(open.campaignId, { batchSize: 3 });
    assert.equal(resumed.status, 'finished');
    assert.deepEqual(await counts(), [2, 2, 2, 2, 2], 'nothing written twice');
    assert.deepEqual([resumed.campaign?.rewrapped, resumed.campaign?.skipped], [5, 0]);
    await ledger.close();
  });

  it('a crash while writing a key’s material leaves it for the resume', async () => {
    const s = await setup(4);
    const { ledger, store } = s;
    await rotateStk(s, 'stk-2');
    let materials = 0;
    store.failWhen = (stream) => stream.includes('material-') && ++materials === 3;
    await assert.rejects(ledger.rewrap.start({ batchSize: 10 }), /injected crash/);
    const open = (await ledger.rewrap.status()).open;
    assert.ok(open !== null);
    const resumed = await ledger.rewrap.resume(open.campaignId);
    assert.deepEqual([resumed.status, resumed.campaign?.rewrapped, resumed.remaining], ['finished', 4, 0]);
    for (const key of allKeys(ledger))
      assert.equal((await materialEvents(store, ledger, key.keyId)).length, 2);
    await ledger.close();
  });

  it('a batch limit pauses a campaign; a rotation meanwhile retargets it to the newest STK', async () => {
    const s = await setup(5);
    const { ledger, store } = s;
    await rotateStk(s, 'stk-2');
    const paused = await ledger.rewrap.start({ batchSize: 2, maxBatches: 1 });
    assert.equal(paused.status, 'paused');
    assert.deepEqual([paused.campaign?.done, paused.remaining], [2, 3]);
    const stk3 = await rotateStk(s, 'stk-3');
    const resumed = await ledger.rewrap.resume(paused.campaign?.campaignId ?? '', { batchSize: 2 });
    assert.equal(resumed.status, 'finished');
    assert.deepEqual(
      [resumed.campaign?.targetStkIdentity, resumed.campaign?.pass, resumed.campaign?.rewrapped],
      [stk3, 2, 5],
    );
    for (const key of allKeys(ledger)) assert.equal(key.stkIdentity, stk3);
    const types = (await rewrapEvents(store, ledger)).map((e) => e.type);
    assert.deepEqual(types, [
      'RewrapStarted',
      'RewrapProgressed',
      'RewrapRetargeted',
      'RewrapProgressed',
      'RewrapProgressed',
      'RewrapProgressed',
      'RewrapFinished',
    ]);
    // Two keys moved twice (stk-1 → stk-2 → stk-3), the others once.
    const lengths = await Promise.all(
      allKeys(ledger).map(async (k) => (await materialEvents(store, ledger, k.keyId)).length),
    );
    assert.deepEqual(lengths.sort(), [2, 2, 2, 3, 3]);
    await ledger.close();
  });

  it('an aborted signal pauses at the next batch boundary', async () => {
    const s = await setup(4);
    await rotateStk(s, 'stk-2');
    const abort = new AbortController();
    const r = await s.ledger.rewrap.start({
      batchSize: 1,
      signal: abort.signal,
      onProgress: () => abort.abort(),
    });
    assert.deepEqual([r.status, r.campaign?.done], ['paused', 1]);
    await rejectsWithCode(() => s.ledger.rewrap.start({ batchSize: 0 }), 'ERR_INVALID_ARGUMENT');
    await s.ledger.close();
  });
});

describe('retiring a system key', () => {
  it('is refused while keys reference it and for the current STK; allowed after a rewrap; once only', async () => {
    const s = await setup(3, { snapshotEvery: 1 });
    const { ledger, store } = s;
    const oldStk = ledger.systemKeys()[0]?.identity ?? '';
    const ct = await ledger.envelope.encrypt(Buffer.from('before'), {
      custodian: CUST,
      namespaces: ['ns-01'],
    });
    const newStk = await rotateStk(s, 'stk-2');

    const head = await store.headPosition();
    await rejectsWithCode(() => ledger.rewrap.retireSystemKey(oldStk), 'ERR_SYSTEM_KEY_IN_USE', {
      identity: oldStk,
      keys: 3,
    });
    await rejectsWithCode(() => ledger.rewrap.retireSystemKey(newStk), 'ERR_SYSTEM_KEY_CURRENT');
    await rejectsWithCode(
      () => ledger.rewrap.retireSystemKey('0000000000000000'),
      'ERR_SYSTEM_KEY_NOT_FOUND',
    );
    await rejectsWithCode(() => ledger.rewrap.retireSystemKey('nope'), 'ERR_INVALID_ARGUMENT');
    // A campaign part-way: fewer keys, still in use.
    const paused = await ledger.rewrap.start({ batchSize: 2, maxBatches: 1 });
    assert.equal(paused.status, 'paused');
    await rejectsWithCode(() => ledger.rewrap.retireSystemKey(oldStk), 'ERR_SYSTEM_KEY_IN_USE', { keys: 1 });
    assert.ok((await store.headPosition()) > head);
    const afterRefusals = await store.headPosition();
    await rejectsWithCode(() => ledger.rewrap.retireSystemKey(oldStk), 'ERR_SYSTEM_KEY_IN_USE');
    assert.equal(await store.headPosition(), afterRefusals, 'a refusal writes nothing');

    await ledger.rewrap.resume(paused.campaign?.campaignId ?? '');
    const retired = await ledger.rewrap.retireSystemKey(oldStk, { reason: 'rewrap done' });
    assert.deepEqual([retired.identity, retired.sequence], [oldStk, 1]);
    const systemEvents = (await store.readStream(ledger.streamNames.system)).map(parseLedgerEvent);
    assert.deepEqual(
      systemEvents.map((e) => e.type),
      ['SystemKeyRecorded', 'SystemKeyRotated', 'SystemKeyRetired'],
    );
    assert.equal(systemEvents[2]?.meta.reason, 'rewrap done');
    assert.notEqual(ledger.systemKeys()[0]?.retiredAt, null);
    assert.equal(ledger.systemKeys()[1]?.retiredAt, null);
    await rejectsWithCode(() => ledger.rewrap.retireSystemKey(oldStk), 'ERR_SYSTEM_KEY_ALREADY_RETIRED');
    assert.deepEqual(await ledger.envelope.decrypt(ct), Buffer.from('before'));
    await ledger.close();

    // Reopened (from the snapshot): the key is still retired, data still decrypts, and the retired
    // STK is never fetched.
    s.tracker.fetched.length = 0;
    const reopened = await s.open();
    assert.notEqual(reopened.systemKeys()[0]?.retiredAt, null);
    assert.deepEqual(await reopened.envelope.decrypt(ct), Buffer.from('before'));
    await reopened.admin.enableKeyManagement(CUST, 'ns-new');
    await reopened.admin.refreshManagedKeys(CUST, 'ns-01');
    assert.ok(!s.tracker.fetched.includes(oldStk));
    assert.ok(s.tracker.fetched.includes(newStk));
    const status = await reopened.rewrap.status();
    assert.deepEqual(
      status.systemKeys.map((k) => [k.identity, k.retiredAt !== null, k.keys]),
      [
        [oldStk, true, 0],
        [newStk, false, 4],
      ],
    );
    await reopened.close();
  });

  it('a retired STK can never become the current one again, even under a new name', async () => {
    const s = await setup(1);
    const { ledger, store } = s;
    const oldStk = ledger.systemKeys()[0]?.identity ?? '';
    const oldMetadata = ledger.systemKeys()[0]?.metadata ?? '';
    await rotateStk(s, 'stk-2');
    await ledger.rewrap.start();
    await ledger.rewrap.retireSystemKey(oldStk);
    // The provider now offers the retired key's bytes under a new alias.
    const old = await s.stks.unwrapSystemKey(oldMetadata);
    s.tracker.currentOverride = async () => ({
      ...old,
      metadata: JSON.stringify({ KeyAlias: 'stk-1-renamed' }),
    });
    const head = await store.headPosition();
    await rejectsWithCode(() => ledger.admin.rotateSTK(), 'ERR_SYSTEM_KEY_RETIRED', { identity: oldStk });
    assert.equal(await store.headPosition(), head);
    // New keys are wrapped under the current STK.
    s.tracker.currentOverride = null;
    await ledger.admin.enableKeyManagement(CUST, 'ns-later');
    assert.ok(allKeys(ledger).every((k) => k.stkIdentity !== oldStk));
    await ledger.close();
  });

  it('an unfinished campaign towards an STK keeps it from being retired', async () => {
    const s = await setup(3);
    const { ledger } = s;
    const stk2 = await rotateStk(s, 'stk-2');
    const paused = await ledger.rewrap.start({ batchSize: 1, maxBatches: 1 });
    await rotateStk(s, 'stk-3');
    await rejectsWithCode(() => ledger.rewrap.retireSystemKey(stk2), 'ERR_SYSTEM_KEY_IN_USE', {
      campaignId: paused.campaign?.campaignId,
    });
    const done = await ledger.rewrap.resume(paused.campaign?.campaignId ?? '');
    assert.equal(done.status, 'finished');
    await ledger.rewrap.retireSystemKey(stk2);
    await ledger.rewrap.retireSystemKey(ledger.systemKeys()[0]?.identity ?? '');
    assert.deepEqual(
      ledger.systemKeys().map((k) => k.retiredAt !== null),
      [true, true, false],
    );
    await ledger.close();
  });
});
