import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAsOfIndex } from '../../src/audit/asOfSnapshots.js';
import { canonicalJson } from '../../src/audit/canonicalJson.js';
import { openingSnapshotKeys } from '../../src/audit/snapshotSeal.js';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { keyScope } from '../../src/domain/identities.js';
import { asOfSnapshotName } from '../../src/journal/streamNames.js';
import type { KeyInfo } from '../../src/ledger/keyInfo.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { startEsdbTestServer } from '../esdb/esdbTestServer.js';
import { plainScopes } from '../helpers/keymetaViews.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';
import { editSnapshot, editSnapshotRows, readSnapshot, readSnapshotRows } from '../helpers/tamperSqlite.js';

/**
 * Finding 1 of issue 11: a stored snapshot is trusted only when it is bound to the event at its
 * position and MACed under the system key (src/audit/snapshotSeal.ts). Each attack edits the
 * snapshot the way someone with write access to the store would; the ledger must ignore the
 * forgery (rebuilding its view from the events), say so, and verify must report it.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const SCOPE = keyScope(CUST, NS);
const TARGET = { custodian: CUST, namespaces: [NS] };
const PLAINTEXT = Buffer.from('customer record 42');
const KEYMETA = 'kl-keymeta';

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-snapshot-seal-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function open(store: EventStore, provider: ScriptedProvider, asOfEvery?: number): Promise<Ledger> {
  return Ledger.open({ store, provider, actor: 'test', checkpointEvery: 0, asOfEvery });
}

/** k1 (which encrypted `ciphertext`) then k2 by rotation: k1 INACTIVE, k2 ACTIVE. */
async function history(ledger: Ledger, provider: ScriptedProvider) {
  await ledger.initialise();
  provider.setKey(SCOPE, 'k1');
  const k1 = (await ledger.admin.enableKeyManagement(CUST, NS)).key as KeyInfo;
  const ciphertext = await ledger.envelope.encrypt(PLAINTEXT, TARGET);
  provider.setKey(SCOPE, 'k2');
  await ledger.admin.rotateManagedKey(CUST, NS);
  return { k1, ciphertext };
}

async function stateOf(ledger: Ledger, metadataHash: string): Promise<string | undefined> {
  return (await ledger.admin.getManagedKeys(CUST, NS)).find((k) => k.metadataHash === metadataHash)?.state;
}

async function verifyPath(path: string, provider: ScriptedProvider) {
  const store = SqliteEventStore.open(path);
  try {
    return await verifyStore(store, { provider });
  } finally {
    await store.close();
  }
}

/** Opens, runs `use`, closes: one process's session on the file. */
async function session<T>(path: string, provider: ScriptedProvider, use: (l: Ledger) => Promise<T>) {
  const store = SqliteEventStore.open(path);
  const ledger = await open(store, provider);
  try {
    return await use(ledger);
  } finally {
    await ledger.close();
    await store.close();
  }
}

/** Reads no snapshot (and saves none): a view built from the events alone. */
class NoSnapshotReads extends ForwardingEventStore {
  override async loadSnapshot(): Promise<null> {
    return null;
  }
  override async saveSnapshot(): Promise<void> {}
  override async saveSnapshotRows(): Promise<boolean> {
    return false;
  }
}

describe('snapshots are bound to the log (issue 11, finding 1)', () => {
  it('a genuine snapshot is sealed, restored and verified; verify counts it', async () => {
    const path = join(dir, `clean-${++files}.db`);
    const provider = new ScriptedProvider();
    await session(path, provider, (l) => history(l, provider));
    const stored = readSnapshot(path, KEYMETA).state as { seal?: { stkIdentity?: string } };
    assert.match(stored.seal?.stkIdentity ?? '', /^[0-9a-f]{16}$/);
    await session(path, provider, async (l) => {
      assert.deepEqual(l.snapshotRejections, []);
    });
    const report = await verifyPath(path, provider);
    assert.equal(report.ok, true, report.firstProblem?.message);
    assert.equal(report.snapshotsChecked, 1);
    assert.equal(report.snapshotsUnused, 0);
  });

  it('state changed and position set above the head: ignored, later writes applied, the DISABLED key does not decrypt', async () => {
    const path = join(dir, `beyond-${++files}.db`);
    const provider = new ScriptedProvider();
    const { k1, ciphertext } = await session(path, provider, (l) => history(l, provider));
    editSnapshot(path, KEYMETA, (s) => ({ ...s, position: s.position + 1000n }));

    await session(path, provider, async (l) => {
      assert.deepEqual(
        l.snapshotRejections.map((r) => [r.snapshot, r.kind]),
        [[KEYMETA, 'snapshot-beyond-head']],
      );
      // The view was rebuilt from the events, so this write is applied.
      await l.admin.disableManagedKey(CUST, NS, k1.metadataHash);
      assert.equal(await stateOf(l, k1.metadataHash), 'DISABLED');
      await assert.rejects(l.envelope.decrypt(ciphertext));
    });
    // The store keeps the forged snapshot (its position is higher than any the ledger saves): the
    // attacker now also makes k1 ACTIVE inside its rows.
    editSnapshotRows(path, KEYMETA, (rows) => {
      const text = rows.get(`${CUST}:${NS}`) ?? '';
      const edited = text.replaceAll('"INACTIVE"', '"ACTIVE"');
      assert.notEqual(edited, text, 'the forged snapshot holds k1 INACTIVE');
      rows.set(`${CUST}:${NS}`, edited);
    });
    await session(path, provider, async (l) => {
      assert.deepEqual(
        l.snapshotRejections.map((r) => r.kind),
        ['snapshot-beyond-head'],
      );
      assert.equal(await stateOf(l, k1.metadataHash), 'DISABLED');
      await assert.rejects(l.envelope.decrypt(ciphertext));
    });
    const report = await verifyPath(path, provider);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.stream]),
      [['snapshot-beyond-head', KEYMETA]],
    );
  });

  it('a destroyed key’s material put back into the snapshot (its row from before): ignored, destroyed data does not decrypt', async () => {
    const path = join(dir, `material-${++files}.db`);
    const provider = new ScriptedProvider();
    const { k1, ciphertext } = await session(path, provider, (l) => history(l, provider));
    const before = readSnapshotRows(path, KEYMETA).get(`${CUST}:${NS}`);
    // Row layout: projections/keymetaRows.ts (keys at 6; a key's wrapped material at 11).
    const keys = (JSON.parse(before ?? '[]') as unknown[])[6] as unknown[][] | undefined;
    const wrapped = keys?.find((k) => k[0] === k1.keyId)?.[11];
    assert.ok(typeof wrapped === 'string', 'the snapshot holds k1’s wrapped material before destruction');

    await session(path, provider, async (l) => {
      assert.deepEqual(await l.envelope.decrypt(ciphertext), PLAINTEXT);
      await l.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
      assert.equal((await l.destruction.destroyDueKeys()).destroyed.length, 1);
    });
    editSnapshotRows(path, KEYMETA, (rows) => {
      assert.ok(!rows.get(`${CUST}:${NS}`)?.includes(wrapped));
      rows.set(`${CUST}:${NS}`, before as string);
    });

    const report = await verifyPath(path, provider);
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.stream]),
      [['snapshot-rows-mismatch', KEYMETA]],
    );
    await session(path, provider, async (l) => {
      assert.deepEqual(
        l.snapshotRejections.map((r) => r.kind),
        ['snapshot-rows-mismatch'],
      );
      assert.equal(await stateOf(l, k1.metadataHash), 'DESTROYED');
      await assert.rejects(l.envelope.decrypt(ciphertext), { code: 'ERR_DECRYPTION_FAILED' });
    });
    // The replay stored a genuine snapshot over the forged one (every row, at the same position).
    assert.equal((await verifyPath(path, provider)).ok, true);
  });

  it('saves of changed rows keep the rows adding up: reopened, the view is the replay’s and verify is clean', async () => {
    const path = join(dir, `incremental-${++files}.db`);
    const provider = new ScriptedProvider();
    await session(path, provider, (l) => history(l, provider));
    const snapshotPositions: bigint[] = [readSnapshot(path, KEYMETA).position];
    for (const round of [1, 2, 3]) {
      // A save after every event: each one writes the rows of the scope the event changed.
      const store = SqliteEventStore.open(path);
      const l = await Ledger.open({ store, provider, actor: 'test', checkpointEvery: 0, snapshotEvery: 1 });
      try {
        assert.deepEqual(l.snapshotRejections, []);
        provider.setKey(keyScope(CUST, `round-${round}`), `r${round}`);
        await l.admin.enableKeyManagement(CUST, `round-${round}`);
        provider.setKey(SCOPE, `k${round + 2}`);
        await l.admin.rotateManagedKey(CUST, NS);
        provider.setKey(keyScope(CUST, `round-${round}`), `r${round}b`);
        await l.admin.rotateManagedKey(CUST, `round-${round}`);
      } finally {
        await l.close();
        await store.close();
      }
      snapshotPositions.push(readSnapshot(path, KEYMETA).position);
    }
    assert.equal(new Set(snapshotPositions).size, 4, 'every session saved');
    const report = await verifyPath(path, provider);
    assert.equal(report.ok, true, report.firstProblem?.message);
    const restored = await session(path, provider, async (l) => {
      assert.deepEqual(l.snapshotRejections, []);
      return l.admin.listScopes();
    });
    // The same store replayed from the events alone (no snapshot read).
    const bare = SqliteEventStore.open(path);
    const replayed = await Ledger.open({
      store: new NoSnapshotReads(bare),
      provider,
      actor: 'test',
      checkpointEvery: 0,
    });
    try {
      assert.deepEqual(restored, replayed.admin.listScopes());
      assert.equal(restored.length, 4);
    } finally {
      await replayed.close();
      await bare.close();
    }
  });

  for (const [attack, edit] of [
    [
      'a row edited',
      (rows: Map<string, string>) =>
        rows.set(`${CUST}:${NS}`, (rows.get(`${CUST}:${NS}`) ?? '').replace('"ACTIVE"', '"DISABLED"')),
    ],
    ['a row dropped', (rows: Map<string, string>) => rows.delete(`${CUST}:${NS}`)],
    [
      'a row added',
      (rows: Map<string, string>) =>
        rows.set(`${CUST}:forged`, (rows.get(`${CUST}:${NS}`) ?? '').replace(`"${NS}"`, '"forged"')),
    ],
  ] as const) {
    it(`${attack}: the rows do not add up to the sealed digest; open rebuilds, verify reports`, async () => {
      const path = join(dir, `rows-${++files}.db`);
      const provider = new ScriptedProvider();
      await session(path, provider, async (l) => {
        await history(l, provider);
        await l.admin.enableKeyManagement(CUST, 'billing');
      });
      const rows = readSnapshotRows(path, KEYMETA);
      editSnapshotRows(path, KEYMETA, edit);
      assert.notDeepEqual(readSnapshotRows(path, KEYMETA), rows, 'the edit changed the rows');
      const report = await verifyPath(path, provider);
      assert.deepEqual(
        report.problems.map((p) => [p.kind, p.stream]),
        [['snapshot-rows-mismatch', KEYMETA]],
      );
      await session(path, provider, async (l) => {
        assert.deepEqual(
          l.snapshotRejections.map((r) => r.kind),
          ['snapshot-rows-mismatch'],
        );
        assert.equal((await l.admin.getManagedKeys(CUST, NS)).filter((k) => k.state === 'ACTIVE').length, 1);
        // The forged scope is not there, the dropped one is.
        assert.equal(l.admin.listScopes().length, 2);
      });
    });
  }

  it('a snapshot moved to another event’s position (seal kept) is snapshot-event-mismatch', async () => {
    const path = join(dir, `moved-${++files}.db`);
    const provider = new ScriptedProvider();
    await session(path, provider, (l) => history(l, provider));
    editSnapshot(path, KEYMETA, (s) => ({ ...s, position: s.position - 1n }));
    assert.deepEqual(
      (await verifyPath(path, provider)).problems.map((p) => p.kind),
      ['snapshot-event-mismatch'],
    );
    await session(path, provider, async (l) => {
      assert.deepEqual(
        l.snapshotRejections.map((r) => r.kind),
        ['snapshot-event-mismatch'],
      );
    });
  });

  it('a snapshot without a seal (an older ledger’s) is replayed around and counted, not a problem', async () => {
    const path = join(dir, `unbound-${++files}.db`);
    const provider = new ScriptedProvider();
    await session(path, provider, (l) => history(l, provider));
    editSnapshot(path, KEYMETA, (s) => ({ ...s, state: (s.state as { body: unknown }).body }));
    const report = await verifyPath(path, provider);
    assert.equal(report.ok, true, report.firstProblem?.message);
    assert.equal(report.snapshotsUnused, 1);
    await session(path, provider, async (l) => {
      assert.deepEqual(
        l.snapshotRejections.map((r) => r.kind),
        ['snapshot-unbound'],
      );
      assert.equal((await l.admin.getManagedKeys(CUST, NS)).length, 2);
    });
    // Closing after the replay stored a sealed snapshot in its place.
    assert.ok((readSnapshot(path, KEYMETA).state as { seal?: unknown }).seal !== undefined);
  });

  it('an as-of snapshot edited: the query skips it for the events, and verify reports it', async () => {
    const path = join(dir, `asof-${++files}.db`);
    const provider = new ScriptedProvider();
    let store = SqliteEventStore.open(path);
    let ledger = await open(store, provider, 1);
    const { k1 } = await history(ledger, provider);
    await ledger.admin.disableManagedKey(CUST, NS, k1.metadataHash);
    const head = await store.headPosition();
    const truth = await ledger.asOf(head);
    await ledger.close();
    const marks = (await loadAsOfIndex(store, 'kl-')).filter((m) => m.snapshot);
    await store.close();
    const last = marks.at(-1);
    assert.ok(last !== undefined);
    const name = asOfSnapshotName('kl-', last.position);
    // The attacker empties the historic view (any change to the body will do).
    editSnapshot(path, name, (s) => {
      const state = s.state as { body: { asOfRows: { scopes: unknown[] } } };
      assert.ok(state.body.asOfRows.scopes.length > 0);
      state.body.asOfRows.scopes = [];
      return { ...s, state };
    });
    store = SqliteEventStore.open(path);
    ledger = await open(store, provider, 1);
    try {
      assert.deepEqual((await ledger.asOf(head)).scopes, truth.scopes);
      assert.ok(
        ledger.snapshotRejections.some((r) => r.snapshot === name && r.kind === 'snapshot-mac-invalid'),
      );
      const report = await ledger.verify();
      assert.ok(report.problems.some((p) => p.kind === 'snapshot-mac-invalid' && p.stream === name));
    } finally {
      await ledger.close();
      await store.close();
    }
  });

  it('a version-1 seal (made before seal version 2) is still checked and used; a version-2 MAC relabelled as version 1 is snapshot-mac-invalid', async () => {
    const path = join(dir, `seal-v1-${++files}.db`);
    const provider = new ScriptedProvider();
    let store = SqliteEventStore.open(path);
    let ledger = await open(store, provider, 1);
    const { k1 } = await history(ledger, provider);
    await ledger.admin.disableManagedKey(CUST, NS, k1.metadataHash);
    const head = await store.headPosition();
    const truth = await ledger.asOf(head);
    await ledger.close();
    const marks = (await loadAsOfIndex(store, 'kl-')).filter((m) => m.snapshot);
    const last = marks.at(-1);
    assert.ok(last !== undefined);
    const name = asOfSnapshotName('kl-', last.position);
    type Sealed = {
      seal: {
        version: number;
        stream: string;
        revision: string;
        eventHash: string;
        stkIdentity: string;
        mac: string;
      };
      body: unknown;
    };
    const genuine = readSnapshot(path, name);
    const { seal, body } = genuine.state as Sealed;
    assert.equal(seal.version, 2, 'new seals are version 2');
    // The version-1 MAC, made as formats.md describes it: canonical JSON of everything, body included.
    const keys = await openingSnapshotKeys(store, 'kl-system', provider);
    const v1Message = canonicalJson({
      purpose: 'keyledger-snapshot-v1',
      name,
      position: genuine.position.toString(),
      stream: seal.stream,
      revision: seal.revision,
      eventHash: seal.eventHash,
      stkIdentity: seal.stkIdentity,
      body,
    });
    const answer = await keys.mac(seal.stkIdentity, Buffer.from(v1Message, 'utf8'));
    keys.close();
    await store.close();
    assert.ok(answer.kind === 'mac');
    const v1Mac = answer.mac.toString('hex');
    assert.notEqual(v1Mac, seal.mac, 'the two versions MAC different messages');

    editSnapshot(path, name, (s) => ({ ...s, state: { seal: { ...seal, version: 1, mac: v1Mac }, body } }));
    store = SqliteEventStore.open(path);
    ledger = await open(store, provider, 1);
    try {
      assert.deepEqual(plainScopes((await ledger.asOf(head)).scopes), plainScopes(truth.scopes));
      assert.deepEqual(ledger.snapshotRejections, [], 'the version-1 seal verifies');
      const report = await ledger.verify();
      assert.equal(report.ok, true, report.firstProblem?.message);
    } finally {
      await ledger.close();
      await store.close();
    }

    // The version-2 MAC kept, the version said to be 1: the message differs, so the MAC fails.
    editSnapshot(path, name, (s) => ({ ...s, state: { seal: { ...seal, version: 1 }, body } }));
    store = SqliteEventStore.open(path);
    ledger = await open(store, provider, 1);
    try {
      assert.deepEqual(plainScopes((await ledger.asOf(head)).scopes), plainScopes(truth.scopes));
      assert.ok(
        ledger.snapshotRejections.some((r) => r.snapshot === name && r.kind === 'snapshot-mac-invalid'),
      );
    } finally {
      await ledger.close();
      await store.close();
    }
  });

  for (const [name, make] of [
    ['memory', async () => ({ store: new MemoryEventStore() as EventStore, done: async () => {} })],
    [
      'EventStoreDB (test server)',
      async () => {
        const server = await startEsdbTestServer();
        return {
          store: EsdbEventStore.open(server.connectionString) as EventStore,
          done: () => server.close(),
        };
      },
    ],
  ] as const) {
    it(`on ${name}: a snapshot saved through the port above the head is ignored and reported`, async () => {
      const { store, done } = await make();
      try {
        const provider = new ScriptedProvider();
        let ledger = await open(store, provider);
        const { k1, ciphertext } = await history(ledger, provider);
        await ledger.close();
        const genuine = await store.loadSnapshot(KEYMETA);
        assert.ok(genuine !== null);
        await store.saveSnapshot(KEYMETA, { ...genuine, position: genuine.position + 10_000n });
        ledger = await open(store, provider);
        try {
          assert.deepEqual(
            ledger.snapshotRejections.map((r) => r.kind),
            ['snapshot-beyond-head'],
          );
          await ledger.admin.disableManagedKey(CUST, NS, k1.metadataHash);
          assert.equal(await stateOf(ledger, k1.metadataHash), 'DISABLED');
          await assert.rejects(ledger.envelope.decrypt(ciphertext));
          const report = await ledger.verify();
          assert.deepEqual(
            report.problems.map((p) => p.kind),
            ['snapshot-beyond-head'],
          );
        } finally {
          await ledger.close();
        }
      } finally {
        await store.close();
        await done();
      }
    });
  }
});
