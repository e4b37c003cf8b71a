import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { verifyStore } from '../../src/audit/verifyStore.js';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { SnapshotRow } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * verify on a ledger another process is writing: a row snapshot's header and its rows are separate
 * reads, and a snapshot saved between them (or past the head verify read first) is not tampering.
 * Found by the rotate-due-keys kill test, where a ledger saved row snapshots while verify ran.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const SCOPE = keyScope(CUST, NS);
const KEYMETA = 'kl-keymeta';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-verify-live-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `between` once, after the header was read and before the first page of rows. */
class SaveBetweenHeaderAndRows extends ForwardingEventStore {
  rowReads = 0;
  constructor(
    inner: SqliteEventStore,
    private readonly between: () => Promise<void>,
  ) {
    super(inner);
  }
  override async *readSnapshotRows(name: string): AsyncIterable<readonly SnapshotRow[]> {
    if (name === KEYMETA && this.rowReads++ === 0) await this.between();
    yield* this.inner.readSnapshotRows(name);
  }
}

describe('verify while another ledger saves snapshots', () => {
  it('given a row snapshot replaced between its header read and its rows read, when verify runs, then it re-checks the new one and reports nothing', async (t) => {
    const path = join(dir, 'live.db');
    const provider = new ScriptedProvider();
    const writerStore = SqliteEventStore.open(path);
    const writer = await Ledger.open({
      store: writerStore,
      provider,
      actor: 'writer',
      checkpointEvery: 0,
      snapshotEvery: 1,
    });
    t.after(async () => {
      await writer.close();
      await writerStore.close();
    });
    await writer.initialise();
    provider.setKey(SCOPE, 'k1');
    await writer.admin.enableKeyManagement(CUST, NS);
    await writer.admin.enableKeyManagement(CUST, 'billing');

    const verifierStore = SqliteEventStore.open(path);
    t.after(() => verifierStore.close());
    const saved = async (): Promise<bigint> => (await verifierStore.loadSnapshot(KEYMETA))?.position ?? -1n;
    for (let i = 0; (await saved()) < (await verifierStore.headPosition()); i++) {
      assert.ok(i < 200, 'the writer saves a snapshot at its head');
      await sleep(10);
    }
    const store = new SaveBetweenHeaderAndRows(verifierStore, async () => {
      provider.setKey(SCOPE, 'k2');
      await writer.admin.rotateManagedKey(CUST, NS);
      const rotated = await verifierStore.headPosition();
      for (let i = 0; (await saved()) < rotated; i++) {
        assert.ok(i < 200, 'the writer saves a snapshot with the rotation');
        await sleep(10);
      }
    });

    const report = await verifyStore(store, { provider });

    assert.equal(store.rowReads, 2, 'the rows were read again, for the newer snapshot');
    assert.deepEqual(report.problems, []);
    assert.equal(report.ok, true);
  });
});
