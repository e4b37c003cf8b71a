import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChainingEventStore } from '../../src/audit/chainingEventStore.js';
import {
  CHECKPOINT_MAC_LABEL,
  checkpointData,
  checkpointMacMessage,
  parseCheckpoint,
} from '../../src/audit/checkpointFormat.js';
import { chainLinkOf, eventHash } from '../../src/audit/hashChain.js';
import type { VerifyReport } from '../../src/audit/verifyReport.js';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { softwareSystemKey } from '../../src/crypto/systemKeyHandle.js';
import { keyScope } from '../../src/domain/identities.js';
import { toStoredEvents } from '../../src/journal/eventFactory.js';
import { streamNames } from '../../src/journal/streamNames.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import type {
  EventStore,
  EventToAppend,
  ExpectedRevision,
  RecordedEvent,
} from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { startEsdbTestServer } from '../esdb/esdbTestServer.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import {
  changeDataByte,
  deleteEvent,
  deleteSnapshot,
  dropLastEvents,
  insertForgedEvent,
  swapEvents,
} from '../helpers/tamperSqlite.js';

const CUST = Buffer.from('tenant-1').toString('base64');
const NAMES = streamNames('kl-');
const ORDERS = NAMES.scope(keyScope(CUST, 'orders'));

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-verify-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function open(store: EventStore, stks: ScriptedProvider, checkpointEvery = 0): Promise<Ledger> {
  return Ledger.open({
    store,
    provider: new GeneratedKeyProvider({ systemKeys: stks }),
    actor: 'test',
    checkpointEvery,
    resolver: { dynamicLookup: false },
  });
}

/**
 * A ledger with history: three scopes, the orders scope rotated twice (its stream: revisions 0..2),
 * a cache clear, then a checkpoint, then one more scope after it (the uncovered tail).
 */
async function build(store: EventStore, stks = new ScriptedProvider()): Promise<Ledger> {
  const ledger = await open(store, stks);
  await ledger.initialise();
  for (const ns of ['orders', 'billing', 'users']) await ledger.admin.enableKeyManagement(CUST, ns);
  await ledger.admin.rotateManagedKey(CUST, 'orders');
  await ledger.admin.rotateManagedKey(CUST, 'orders');
  await ledger.admin.clearManagedKeyDataCache();
  assert.notEqual(await ledger.checkpoint(), null);
  await ledger.admin.enableKeyManagement(CUST, 'later');
  return ledger;
}

async function all(store: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const e of store.readAll({ streamPrefix: 'kl-' })) events.push(e);
  return events;
}

/** A built ledger in a closed sqlite file, ready for an attacker; `orders` are its orders events. */
async function builtFile(): Promise<{ path: string; stks: ScriptedProvider; orders: RecordedEvent[] }> {
  const path = join(dir, `ledger-${++files}.db`);
  const store = SqliteEventStore.open(path);
  const stks = new ScriptedProvider();
  const ledger = await build(store, stks);
  const orders = [...(await store.readStream(ORDERS))];
  await ledger.close();
  await store.close();
  return { path, stks, orders };
}

async function verifyFile(path: string, stks: ScriptedProvider): Promise<VerifyReport> {
  const store = SqliteEventStore.open(path);
  try {
    return await verifyStore(store, { provider: new GeneratedKeyProvider({ systemKeys: stks }) });
  } finally {
    await store.close();
  }
}

function at(events: readonly RecordedEvent[], revision: number): RecordedEvent {
  const event = events[revision];
  if (event === undefined) throw new Error(`no revision ${revision}`);
  return event;
}

function assertFirst(
  report: VerifyReport,
  expected: { kind: string; position: bigint; stream: string; revision: bigint | null },
): void {
  assert.equal(report.ok, false, 'verify must fail');
  const first = report.firstProblem;
  assert.ok(first !== null);
  assert.deepEqual(
    { kind: first.kind, position: first.position, stream: first.stream, revision: first.revision },
    expected,
    first.message,
  );
}

describe('verify: an untouched ledger', () => {
  for (const [name, make] of [
    ['memory', () => new MemoryEventStore()],
    ['sqlite', () => SqliteEventStore.open(join(dir, `clean-${++files}.db`))],
  ] as const) {
    it(`verifies on ${name}, through the ledger and on the bare store alike`, async () => {
      const store: EventStore = make();
      const stks = new ScriptedProvider();
      const ledger = await build(store, stks);
      try {
        const events = await all(store);
        const report = await ledger.verify();
        assert.equal(report.ok, true, report.firstProblem?.message);
        assert.equal(report.problemCount, 0);
        assert.equal(report.eventsChecked, events.length);
        assert.equal(report.checkpointsChecked, 1);
        assert.equal(report.macs, 'checked');
        assert.equal(report.macsVerified, 1);
        assert.equal(report.legacyEvents, 0);
        // After the checkpoint: the later scope's material and lifecycle events.
        assert.equal(report.uncoveredEvents, 2);
        const checkpoint = events.find((e) => e.streamName === NAMES.checkpoints);
        assert.ok(checkpoint !== undefined);
        assert.deepEqual(report.lastCheckpoint, {
          position: checkpoint.position,
          revision: 0n,
          hash: eventHash(checkpoint),
          coveredPosition: checkpoint.position - 1n,
        });
        const bare = await verifyStore(store, { provider: new GeneratedKeyProvider({ systemKeys: stks }) });
        assert.deepEqual(bare, report);
      } finally {
        await ledger.close();
        await store.close();
      }
    });
  }

  it('verifies on EventStoreDB (protocol-level test server): the hashes survive its JSON round trip', async () => {
    const server = await startEsdbTestServer();
    const store = EsdbEventStore.open(server.connectionString);
    try {
      const ledger = await build(store);
      try {
        const [older] = (await ledger.admin.getManagedKeys(CUST, 'orders')).filter(
          (k) => k.state === 'INACTIVE',
        );
        assert.ok(older !== undefined);
        await ledger.destruction.scheduleKeyDestruction(CUST, 'orders', older.metadataHash, { graceMs: 0 });
        await ledger.destruction.destroyDueKeys();
        await ledger.checkpoint();
        const report = await ledger.verify();
        assert.equal(report.ok, true, report.firstProblem?.message);
        assert.equal(report.checkpointsChecked, 2);
        assert.equal(report.macsVerified, 2);
      } finally {
        await ledger.close();
      }
    } finally {
      await store.close();
      await server.close();
    }
  });

  it('every event carries the hash of the one before it in its stream', async () => {
    const store = new MemoryEventStore();
    const ledger = await build(store);
    try {
      const last = new Map<string, string>();
      for (const event of await all(store)) {
        const link = chainLinkOf(event.metadata);
        assert.equal(link.kind, 'chained');
        assert.equal(link.kind === 'chained' ? link.prevHash : undefined, last.get(event.streamName) ?? null);
        last.set(event.streamName, eventHash(event));
      }
    } finally {
      await ledger.close();
    }
  });

  it('without a provider, checks everything but the MACs and says so', async () => {
    const store = new MemoryEventStore();
    const ledger = await build(store);
    try {
      const report = await verifyStore(store);
      assert.equal(report.ok, true);
      assert.equal(report.macs, 'skipped');
      assert.equal(report.macsVerified, 0);
      assert.equal(report.checkpointsChecked, 1);
    } finally {
      await ledger.close();
    }
  });
});

describe('verify: the sqlite file edited behind the ledger’s back', () => {
  it('one byte of an event’s data changed: modified, at that event', async () => {
    const { path, stks, orders } = await builtFile();
    changeDataByte(path, at(orders, 1).position);
    assertFirst(await verifyFile(path, stks), {
      kind: 'modified',
      position: at(orders, 1).position,
      stream: ORDERS,
      revision: 1n,
    });
  });

  it('the last event of a stream changed: modified, found by the checkpoint’s record of the head', async () => {
    const { path, stks, orders } = await builtFile();
    changeDataByte(path, at(orders, 2).position);
    assertFirst(await verifyFile(path, stks), {
      kind: 'modified',
      position: at(orders, 2).position,
      stream: ORDERS,
      revision: 2n,
    });
  });

  it('an event deleted: deleted, at the event after the gap, naming the missing revision', async () => {
    const { path, stks, orders } = await builtFile();
    deleteEvent(path, at(orders, 1).position);
    assertFirst(await verifyFile(path, stks), {
      kind: 'deleted',
      position: at(orders, 2).position,
      stream: ORDERS,
      revision: 1n,
    });
  });

  it('two events swapped (revisions renumbered to match): reordered, at the first of them', async () => {
    const { path, stks, orders } = await builtFile();
    swapEvents(path, at(orders, 1).position, at(orders, 2).position);
    assertFirst(await verifyFile(path, stks), {
      kind: 'reordered',
      position: at(orders, 1).position,
      stream: ORDERS,
      revision: 1n,
    });
  });

  it('a forged event inserted with a correct link: inserted, at the forged event', async () => {
    const { path, stks, orders } = await builtFile();
    const forgedAt = insertForgedEvent(path, at(orders, 0).position, {
      type: 'ManagedKeyDisabled',
      data: { custodian: CUST, namespace: 'orders', keyId: '0'.repeat(32), previousState: 'ACTIVE' },
    });
    assertFirst(await verifyFile(path, stks), {
      kind: 'inserted',
      position: forgedAt,
      stream: ORDERS,
      revision: 1n,
    });
  });

  it('the last events of a stream dropped behind the checkpoint: truncated, naming the first one dropped', async () => {
    const { path, stks, orders } = await builtFile();
    const dropped = dropLastEvents(path, ORDERS, 2);
    assert.deepEqual(
      dropped.map((r) => r.position),
      [at(orders, 1).position, at(orders, 2).position],
    );
    const report = await verifyFile(path, stks);
    // The checkpoint recorded the head (revision 2); the first revision missing is 1.
    assertFirst(report, {
      kind: 'truncated',
      position: at(orders, 2).position,
      stream: ORDERS,
      revision: 1n,
    });
    assert.match(report.firstProblem?.message ?? '', /revisions 1\.\.2 are missing/);
  });

  it('a checkpoint changed (one byte): checkpoint-mac-invalid, at the checkpoint', async () => {
    const { path, stks } = await builtFile();
    const store = SqliteEventStore.open(path);
    const [checkpoint] = await store.readStream(NAMES.checkpoints);
    await store.close();
    assert.ok(checkpoint !== undefined);
    changeDataByte(path, checkpoint.position);
    assertFirst(await verifyFile(path, stks), {
      kind: 'checkpoint-mac-invalid',
      position: checkpoint.position,
      stream: NAMES.checkpoints,
      revision: 0n,
    });
  });

  it('the tail cut together with the newest checkpoint: only an anchor kept elsewhere tells', async () => {
    const path = join(dir, `anchor-${++files}.db`);
    const stks = new ScriptedProvider();
    let store = SqliteEventStore.open(path);
    const ledger = await build(store, stks);
    await ledger.admin.rotateManagedKey(CUST, 'billing');
    const second = await ledger.checkpoint();
    assert.ok(second !== null);
    const anchor = (await ledger.verify()).lastCheckpoint;
    assert.equal(anchor?.revision, 1n);
    await ledger.close();
    await store.close();

    dropLastEvents(path, NAMES.checkpoints, 1);
    // The view snapshot saved at close may already hold the newest checkpoint; a snapshot beyond
    // the head would give the cut away, so this attacker removes it too.
    deleteSnapshot(path, NAMES.keymetaSnapshot);
    const report = await verifyFile(path, stks);
    assert.equal(
      report.ok,
      true,
      'a cut behind the newest surviving checkpoint looks like an uncovered tail',
    );
    assert.ok(report.uncoveredEvents > 0);
    store = SqliteEventStore.open(path);
    try {
      assert.ok(anchor !== null);
      const anchored = await verifyStore(store, {
        provider: new GeneratedKeyProvider({ systemKeys: stks }),
        anchor: { revision: anchor.revision, hash: anchor.hash },
      });
      assert.equal(anchored.firstProblem?.kind, 'rollback');
      assert.equal(anchored.firstProblem?.stream, NAMES.checkpoints);
      assert.equal(anchored.firstProblem?.revision, 1n);
    } finally {
      await store.close();
    }
  });

  it('a checkpoint will not vouch for a tail whose links are broken: ERR_LEDGER_TAMPERED, nothing written', async () => {
    const path = join(dir, `tail-${++files}.db`);
    const stks = new ScriptedProvider();
    let store = SqliteEventStore.open(path);
    let ledger = await build(store, stks);
    await ledger.admin.rotateManagedKey(CUST, 'later');
    const later = [...(await store.readStream(NAMES.scope(keyScope(CUST, 'later'))))];
    await ledger.close();
    await store.close();
    changeDataByte(path, at(later, 0).position);
    store = SqliteEventStore.open(path);
    ledger = await open(store, stks);
    try {
      const head = await store.headPosition();
      await assert.rejects(() => ledger.checkpoint(), { code: 'ERR_LEDGER_TAMPERED' });
      assert.equal(await store.headPosition(), head);
      assert.equal((await store.readStream(NAMES.checkpoints)).length, 1);
    } finally {
      await ledger.close();
      await store.close();
    }
  });
});

/** The checkpoint a forger would write for the store as it is: correct in every way but the key. */
async function forgeCheckpoint(store: EventStore, stkIdentity: string): Promise<RecordedEvent> {
  const previous = (await store.readStream(NAMES.checkpoints)).at(-1);
  assert.ok(previous !== undefined);
  const parsed = parseCheckpoint(previous.data);
  assert.ok(!('invalid' in parsed));
  const heads = new Map<string, RecordedEvent>();
  let covered = parsed.coveredPosition;
  for await (const e of store.readAll({ after: parsed.coveredPosition, streamPrefix: 'kl-' })) {
    if (e.streamName !== NAMES.checkpoints) heads.set(e.streamName, e);
    covered = e.position;
  }
  const checkpoint = {
    previousPosition: parsed.coveredPosition,
    coveredPosition: covered,
    heads: [...heads.values()]
      .map((e) => ({ stream: e.streamName, revision: e.revision, position: e.position, hash: eventHash(e) }))
      .sort((a, b) => (a.stream < b.stream ? -1 : 1)),
    stkIdentity,
  };
  const event = {
    eventId: '00000000-0000-4000-8000-00000000f0f0',
    type: 'LedgerCheckpointed',
    data: checkpointData(checkpoint, null),
    metadata: {
      schemaVersion: 2,
      actor: 'mallory',
      reason: null,
      correlationId: 'forged',
      causationId: null,
      occurredAt: new Date().toISOString(),
      prevHash: eventHash(previous),
    },
  };
  const wrongKey = softwareSystemKey('{"KeyAlias":"mallory"}', SecretBytes.copyOf(Buffer.alloc(32, 0x5a)));
  const mac = wrongKey.mac(
    CHECKPOINT_MAC_LABEL,
    checkpointMacMessage({ streamName: NAMES.checkpoints, ...event }),
  );
  wrongKey.dispose();
  await store.append(
    NAMES.checkpoints,
    [{ ...event, data: checkpointData(checkpoint, mac.toString('hex')) }],
    previous.revision,
  );
  const written = (await store.readStream(NAMES.checkpoints)).at(-1);
  assert.ok(written !== undefined);
  return written;
}

describe('verify: checkpoints only the system key can make', () => {
  it('a checkpoint forged without the key (claiming the real system key) is checkpoint-mac-invalid', async () => {
    const store = new MemoryEventStore();
    const stks = new ScriptedProvider();
    const ledger = await build(store, stks);
    try {
      const identity = ledger.systemKeys()[0]?.identity ?? '';
      const forged = await forgeCheckpoint(store, identity);
      const report = await ledger.verify();
      assertFirst(report, {
        kind: 'checkpoint-mac-invalid',
        position: forged.position,
        stream: NAMES.checkpoints,
        revision: 1n,
      });
    } finally {
      await ledger.close();
    }
  });

  it('a checkpoint naming a system key the ledger never recorded is checkpoint-unknown-system-key', async () => {
    const store = new MemoryEventStore();
    const ledger = await build(store);
    try {
      const forged = await forgeCheckpoint(store, '0123456789abcdef');
      const report = await ledger.verify();
      assertFirst(report, {
        kind: 'checkpoint-unknown-system-key',
        position: forged.position,
        stream: NAMES.checkpoints,
        revision: 1n,
      });
    } finally {
      await ledger.close();
    }
  });

  it('checkpoints under a rotated-away system key still verify; the newest is under the new key', async () => {
    const store = new MemoryEventStore();
    const stks = new ScriptedProvider();
    const ledger = await build(store, stks);
    try {
      stks.rotateSystemKey('stk-2');
      await ledger.admin.rotateSTK();
      await ledger.admin.rotateManagedKey(CUST, 'users');
      const second = await ledger.checkpoint();
      assert.equal(second?.stkIdentity, ledger.systemKeys()[1]?.identity);
      const report = await ledger.verify();
      assert.equal(report.ok, true, report.firstProblem?.message);
      assert.equal(report.macsVerified, 2);
    } finally {
      await ledger.close();
    }
  });
});

describe('verify: checkpoints under a retired system key', () => {
  it('are unavailable; trusted only once a later checkpoint with a verified MAC vouches for them', async () => {
    const store = new MemoryEventStore();
    const stks = new ScriptedProvider();
    const ledger = await build(store, stks);
    try {
      const old = ledger.systemKeys()[0]?.identity ?? '';
      stks.rotateSystemKey('stk-2');
      await ledger.admin.rotateSTK();
      assert.equal((await ledger.rewrap.start()).status, 'finished');
      await ledger.rewrap.retireSystemKey(old);

      const [checkpoint] = await store.readStream(NAMES.checkpoints);
      assert.ok(checkpoint !== undefined);
      const alone = await ledger.verify();
      assertFirst(alone, {
        kind: 'checkpoint-unvouched',
        position: checkpoint.position,
        stream: NAMES.checkpoints,
        revision: 0n,
      });
      assert.equal(alone.macsUnavailable, 1);

      const second = await ledger.checkpoint();
      assert.notEqual(second?.stkIdentity, old);
      const vouched = await ledger.verify();
      assert.equal(vouched.ok, true, vouched.firstProblem?.message);
      assert.deepEqual([vouched.macsUnavailable, vouched.macsVerified], [1, 1]);
    } finally {
      await ledger.close();
    }
  });
});

describe('verify: what the ledger writes keeps the chain', () => {
  it('a process finds the newest checkpoint from its hint, and past a wrong hint by reading the stream', async () => {
    const store = new MemoryEventStore();
    const stks = new ScriptedProvider();
    const first = await build(store, stks);
    await first.close();
    for (const revision of ['0', '7']) {
      // '7' points past the stream's end: the hint is wrong, the lookup must not be.
      await store.saveSnapshot('kl-checkpoint-hint', { position: 1n, state: { revision } });
      const ledger = await open(store, stks);
      try {
        await ledger.admin.clearManagedKeyDataCache();
        const written = await ledger.checkpoint();
        const checkpoints = await store.readStream(NAMES.checkpoints);
        const previous = checkpoints.at(-2);
        assert.ok(written !== null && previous !== undefined);
        const parsed = parseCheckpoint(previous.data);
        assert.ok(!('invalid' in parsed));
        assert.equal(written.previousPosition, parsed.coveredPosition);
        const report = await ledger.verify();
        assert.equal(report.ok, true, report.firstProblem?.message);
      } finally {
        await ledger.close();
      }
    }
  });

  it('an append takes its mark from the hint (revision and coverage) without reading the checkpoint; a forged hint shows in verify', async () => {
    const store = new MemoryEventStore();
    const stks = new ScriptedProvider();
    const first = await build(store, stks);
    await first.checkpoint();
    await first.close();
    const hint = await store.loadSnapshot('kl-checkpoint-hint');
    const newest = (await store.readStream(NAMES.checkpoints)).at(-1);
    assert.ok(newest !== undefined);
    const parsed = parseCheckpoint(newest.data);
    assert.ok(!('invalid' in parsed));
    assert.deepEqual(hint?.state, {
      revision: newest.revision.toString(),
      covered: parsed.coveredPosition.toString(),
    });

    // Every read of the checkpoint stream is counted: the hint's mark needs only the (empty) tail.
    const reads: bigint[] = [];
    const counting = new ForwardingEventStore(store);
    counting.readStream = (stream, options) => {
      if (stream === NAMES.checkpoints) reads.push(options?.fromRevision ?? 0n);
      return store.readStream(stream, options);
    };
    const second = await open(counting, stks, 1000);
    try {
      // Opening may read the checkpoint a stored snapshot is bound to (the open-time seal check):
      // only the append's reads count here.
      reads.length = 0;
      await second.admin.clearManagedKeyDataCache();
      assert.deepEqual(reads, [newest.revision + 1n]);
      const [marked] = (await store.readStream('kl-operations')).slice(-1);
      assert.ok(marked !== undefined);
      const link = chainLinkOf(marked.metadata);
      assert.equal(link.kind === 'chained' ? link.checkpoint : null, newest.revision);
    } finally {
      await second.close();
    }

    // A hint naming a checkpoint the stream does not hold: the events written now name it, and
    // verify reports them (as it reports events naming checkpoints cut from the stream).
    await store.saveSnapshot('kl-checkpoint-hint', {
      position: hint?.position ?? 1n,
      state: { revision: '99', covered: '1' },
    });
    const third = await open(store, stks);
    try {
      await third.admin.clearManagedKeyDataCache();
      const report = await third.verify();
      assert.equal(report.firstProblem?.kind, 'checkpoint-stream-missing');
    } finally {
      await third.close();
    }
  });

  /** Loses the reply of the next append (after it was written), as a dropped connection would. */
  class LossyStore extends MemoryEventStore {
    loseNextReply = false;
    override async append(stream: string, events: readonly EventToAppend[], expected: ExpectedRevision) {
      const result = await super.append(stream, events, expected);
      if (this.loseNextReply) {
        this.loseNextReply = false;
        throw new Error('reply lost');
      }
      return result;
    }
  }

  it('a retried append (same ids, same expected revision, later metadata) links as the original and writes nothing twice', async () => {
    const inner = new LossyStore();
    const store = new ChainingEventStore(inner);
    const stream = 'kl-operations';
    const batch = (occurredAt: string) =>
      toStoredEvents(
        [
          { type: 'CacheCleared', data: {} },
          { type: 'CacheCleared', data: {} },
        ],
        { actor: 'test', reason: null, correlationId: 'c-retry', causationId: null },
        stream,
        'no_stream',
        new Date(occurredAt),
      );
    inner.loseNextReply = true;
    await assert.rejects(
      () => store.append(stream, batch('2026-01-01T00:00:00.000Z'), 'no_stream'),
      /reply lost/,
    );
    const retried = await store.append(stream, batch('2026-01-01T00:00:05.000Z'), 'no_stream');
    const written = await inner.readStream(stream);
    assert.equal(written.length, 2);
    assert.equal(retried.nextExpectedRevision, 1n);
    assert.equal(
      (written[1]?.metadata as { occurredAt?: string } | undefined)?.occurredAt,
      '2026-01-01T00:00:00.000Z',
    );
    // The next write links to what is stored, not to what the retry carried.
    await store.append(
      stream,
      toStoredEvents(
        [{ type: 'CacheCleared', data: {} }],
        { actor: 'test', reason: null, correlationId: 'c-next', causationId: null },
        stream,
        'any',
        new Date(),
      ),
      'any',
    );
    const third = (await inner.readStream(stream))[2];
    assert.ok(third !== undefined && written[1] !== undefined);
    assert.deepEqual(chainLinkOf(third.metadata), { kind: 'chained', prevHash: eventHash(written[1]) });
    const report = await verifyStore(inner);
    assert.equal(report.ok, true, report.firstProblem?.message);
  });

  it('an `any` append from a fresh process links to the stream’s tail reading one event, not the stream', async () => {
    class CountingStore extends MemoryEventStore {
      eventsRead = 0;
      override async readStream(stream: string, options?: { readonly fromRevision?: bigint }) {
        const events = await super.readStream(stream, options);
        this.eventsRead += events.length;
        return events;
      }
    }
    const inner = new CountingStore();
    const stream = NAMES.operations;
    const cleared = (correlationId: string) =>
      toStoredEvents(
        [{ type: 'CacheCleared', data: {} }],
        { actor: 'test', reason: null, correlationId, causationId: null },
        stream,
        'any',
        new Date('2026-01-01T00:00:00Z'),
      );
    const writer = new ChainingEventStore(inner);
    for (let i = 0; i < 50; i++) await writer.append(stream, cleared(`c-${i}`), 'any');
    inner.eventsRead = 0;
    const fresh = new ChainingEventStore(inner);
    await fresh.append(stream, cleared('c-fresh'), 'any');
    assert.equal(inner.eventsRead, 1);
    const events = await inner.readStream(stream);
    assert.equal(events.length, 51);
    const [last, beforeLast] = [events[50], events[49]];
    assert.ok(last !== undefined && beforeLast !== undefined);
    assert.deepEqual(chainLinkOf(last.metadata), { kind: 'chained', prevHash: eventHash(beforeLast) });
    assert.equal((await verifyStore(inner)).ok, true);
  });

  it('an append to a revision the stream is not at is a version conflict, and writes nothing', async () => {
    const inner = new MemoryEventStore();
    const store = new ChainingEventStore(inner);
    const event = (id: string): EventToAppend => ({
      eventId: id,
      type: 'CacheCleared',
      data: {},
      metadata: {},
    });
    await store.append('kl-operations', [event('00000000-0000-4000-8000-000000000001')], 'no_stream');
    await assert.rejects(
      () => store.append('kl-operations', [event('00000000-0000-4000-8000-000000000002')], 5n),
      { code: 'ERR_VERSION_CONFLICT' },
    );
    await assert.rejects(
      () => store.append('kl-other', [event('00000000-0000-4000-8000-000000000003')], 'stream_exists'),
      { code: 'ERR_VERSION_CONFLICT' },
    );
    assert.equal(await inner.headPosition(), 1n);
  });

  it('concurrent writers on `any` streams (two ledgers on one store) still make one linear chain per stream', async () => {
    const store = new MemoryEventStore();
    const stks = new ScriptedProvider();
    const a = await build(store, stks);
    const b = await open(store, stks);
    try {
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 === 0 ? a : b).admin.ejectManagedKeyDataCacheEntry(CUST, 'orders', undefined),
        ),
      );
      const operations = await store.readStream(NAMES.operations);
      assert.equal(operations.length, 13);
      const report = await a.verify();
      assert.equal(report.ok, true, report.firstProblem?.message);
    } finally {
      await a.close();
      await b.close();
    }
  });

  const automaticStores: ReadonlyArray<
    [string, () => Promise<{ store: EventStore; stop(): Promise<void> }>]
  > = [
    ['memory', async () => ({ store: new MemoryEventStore(), stop: async () => {} })],
    [
      // EventStoreDB positions are byte offsets: the interval must still count events.
      'EventStoreDB (test server)',
      async () => {
        const server = await startEsdbTestServer();
        const store = EsdbEventStore.open(server.connectionString);
        const stop = async (): Promise<void> => {
          await store.close();
          await server.close();
        };
        return { store, stop };
      },
    ],
  ];
  for (const [name, make] of automaticStores) {
    it(`automatic checkpoints on ${name}: one per \`checkpointEvery\` events, recorded with the reason`, async () => {
      const { store, stop } = await make();
      const ledger = await open(store, new ScriptedProvider(), 5);
      try {
        await ledger.initialise();
        for (const ns of ['a', 'b', 'c', 'd', 'e', 'f']) await ledger.admin.enableKeyManagement(CUST, ns);
        const checkpoints = await store.readStream(NAMES.checkpoints);
        let events = 0;
        for await (const e of store.readAll({ streamPrefix: 'kl-' }))
          if (e.streamName !== NAMES.checkpoints) events++;
        assert.ok(checkpoints.length >= 2, `${checkpoints.length} checkpoints`);
        assert.ok(
          checkpoints.length <= Math.floor(events / 5),
          `${checkpoints.length} checkpoints for ${events} events`,
        );
        for (const c of checkpoints)
          assert.equal((c.metadata as { reason?: string }).reason, 'automatic checkpoint');
        const report = await ledger.verify();
        assert.equal(report.ok, true, report.firstProblem?.message);
        assert.equal(report.checkpointsChecked, checkpoints.length);
        assert.ok(report.uncoveredEvents < 5 + 2);
      } finally {
        await ledger.close();
        await stop();
      }
    });
  }

  it('checkpoint() with nothing new since the last checkpoint writes nothing', async () => {
    const store = new MemoryEventStore();
    const ledger = await build(store);
    try {
      assert.notEqual(await ledger.checkpoint(), null);
      const head = await store.headPosition();
      assert.equal(await ledger.checkpoint(), null);
      assert.equal(await store.headPosition(), head);
    } finally {
      await ledger.close();
    }
  });

  it('a bad checkpointEvery is ERR_INVALID_ARGUMENT and opens nothing', async () => {
    const store = new MemoryEventStore();
    for (const every of [-1, 1.5, Number.NaN]) {
      await assert.rejects(() => open(store, new ScriptedProvider(), every), {
        code: 'ERR_INVALID_ARGUMENT',
      });
    }
    assert.equal(await store.headPosition(), 0n);
  });
});

describe('verify: legacy events, destroyed material', () => {
  const legacy = (correlationId: string) =>
    toStoredEvents(
      [{ type: 'CacheCleared', data: {} }],
      { actor: 'old', reason: null, correlationId, causationId: null },
      NAMES.operations,
      'any',
      new Date('2025-01-01T00:00:00Z'),
    );

  it('events from before the chain (schemaVersion 1) are counted, not failed; one written after it is unchained', async () => {
    const store = new MemoryEventStore();
    await store.append(NAMES.operations, legacy('old-1'), 'any');
    const ledger = await open(store, new ScriptedProvider());
    try {
      await ledger.initialise();
      await ledger.admin.clearManagedKeyDataCache();
      await ledger.checkpoint();
      const clean = await ledger.verify();
      assert.equal(clean.ok, true, clean.firstProblem?.message);
      assert.equal(clean.legacyEvents, 1);
      const sneaked = await store.append(NAMES.operations, legacy('old-2'), 'any');
      assertFirst(await ledger.verify(), {
        kind: 'unchained',
        position: sneaked.position,
        stream: NAMES.operations,
        revision: 2n,
      });
    } finally {
      await ledger.close();
    }
  });

  it('a destroyed key’s deleted material is accepted by its receipt; material deleted without one is not', async () => {
    const store = new MemoryEventStore();
    const ledger = await build(store);
    try {
      const [older, newer] = (await ledger.admin.getManagedKeys(CUST, 'orders')).filter(
        (k) => k.state === 'INACTIVE',
      );
      assert.ok(older !== undefined && newer !== undefined);
      await ledger.destruction.scheduleKeyDestruction(CUST, 'orders', older.metadataHash, { graceMs: 0 });
      const { destroyed } = await ledger.destruction.destroyDueKeys();
      assert.equal(destroyed.length, 1);
      assert.equal((await store.readStream(NAMES.material(older.keyId))).length, 0);
      const report = await ledger.verify();
      assert.equal(report.ok, true, report.firstProblem?.message);
      assert.equal(report.destroyedStreams, 1);

      const material = NAMES.material(newer.keyId);
      const [wrapped] = await store.readStream(material);
      assert.ok(wrapped !== undefined);
      await store.deleteStream(material);
      assertFirst(await ledger.verify(), {
        kind: 'truncated',
        position: wrapped.position,
        stream: material,
        revision: 0n,
      });
    } finally {
      await ledger.close();
    }
  });
});
