import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isKeyledgerError } from '../../src/domain/errors.js';
import { parseLedgerEvent } from '../../src/domain/events.js';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { LegacyRecord } from '../../src/ledger/legacyCampaign.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const T1 = Buffer.from('tenant-1').toString('base64');
const orders = keyScope(T1, 'orders');
/** Where the scripted provider keeps the old deployment's keys (the alias names the bytes). */
const legacy = keyScope(T1, 'legacy');

/** The legacy layout, written as the old application did: nonce(12) ‖ ciphertext ‖ tag(16). */
function legacyEncrypt(key: Uint8Array, plaintext: string, aad?: string): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad !== undefined) cipher.setAAD(Buffer.from(aad));
  return Buffer.concat([nonce, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
}

async function open(store: MemoryEventStore, provider: ScriptedProvider) {
  return Ledger.open({ store, provider, actor: 'tester', checkpointEvery: 0 });
}

/** A ledger with the old per-table key imported INACTIVE into orders, and a new ACTIVE key there. */
async function setup(store = new MemoryEventStore()) {
  const provider = new ScriptedProvider();
  const ledger = await open(store, provider);
  await ledger.initialise();
  provider.setKey(legacy, 'table-orders');
  provider.setKey(orders, 'orders-2026');
  const imported = await ledger.imports.importManagedKey(T1, 'orders', 'table-orders', 'INACTIVE');
  await ledger.admin.enableKeyManagement(T1, 'orders');
  const oldKey = provider.bytesOf('table-orders');
  assert.ok(oldKey !== undefined);
  return {
    store,
    provider,
    ledger,
    oldKey,
    hash: imported.key.metadataHash,
    [Symbol.asyncDispose]: () => ledger.close(),
  };
}

async function decryptStreamFormat(ledger: Ledger, ciphertext: Buffer, aad?: string): Promise<string> {
  const chunks: Buffer[] = [];
  const stream = Readable.from([ciphertext]).pipe(
    ledger.envelopeStreams.decryptStream(aad === undefined ? {} : { aad: Buffer.from(aad) }),
  );
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function records(key: Uint8Array, ids: readonly string[], aad = true): LegacyRecord[] {
  return ids.map((id) => ({
    id,
    data: legacyEncrypt(key, `row ${id}`, aad ? `orders/${id}` : undefined),
    ...(aad ? { aad: Buffer.from(`orders/${id}`) } : {}),
  }));
}

describe('re-encrypting legacy data (a file or stream)', () => {
  it('round trip without and with AAD: the stream format under the scope’s ACTIVE key, bound to the same AAD', async () => {
    await using t = await setup();
    const head = await t.store.headPosition();
    const plain = await t.ledger.legacyReencryption.reencryptData(
      t.hash,
      legacyEncrypt(t.oldKey, 'no aad here'),
    );
    assert.equal(await decryptStreamFormat(t.ledger, plain.ciphertext), 'no aad here');
    const active = (await t.ledger.admin.getManagedKeys(T1, 'orders')).find((k) => k.state === 'ACTIVE');
    assert.equal(plain.to.metadataHash, active?.metadataHash);
    assert.equal(plain.from.metadataHash, t.hash);
    const bound = await t.ledger.legacyReencryption.reencryptData(
      t.hash,
      legacyEncrypt(t.oldKey, 'with aad', 'orders/7'),
      { aad: Buffer.from('orders/7') },
    );
    assert.equal(await decryptStreamFormat(t.ledger, bound.ciphertext, 'orders/7'), 'with aad');
    await assert.rejects(decryptStreamFormat(t.ledger, bound.ciphertext, 'orders/8'), (e: unknown) =>
      isKeyledgerError(e, 'ERR_DECRYPTION_FAILED'),
    );
    // A file records nothing.
    assert.equal(await t.store.headPosition(), head);
  });

  it('wrong AAD, a flipped bit, a short file: ERR_DECRYPTION_FAILED, nothing else said', async () => {
    await using t = await setup();
    const data = legacyEncrypt(t.oldKey, 'secret', 'a');
    const flipped = Buffer.from(data);
    flipped[14] = (flipped[14] as number) ^ 1;
    for (const [bytes, aad] of [
      [data, 'b'],
      [data, undefined],
      [flipped, 'a'],
      [data.subarray(0, 20), 'a'],
    ] as const) {
      await assert.rejects(
        t.ledger.legacyReencryption.reencryptData(
          t.hash,
          bytes,
          aad === undefined ? {} : { aad: Buffer.from(aad) },
        ),
        (e: unknown) => isKeyledgerError(e, 'ERR_DECRYPTION_FAILED') && Object.keys(e.details).length === 0,
      );
    }
  });

  it('refused: an unknown hash, a key not imported, a DISABLED key — ERR_LEGACY_KEY_UNUSABLE, nothing written', async () => {
    await using t = await setup();
    const data = legacyEncrypt(t.oldKey, 'x');
    const expectUnusable = async (hash: string, check: (d: Record<string, unknown>) => boolean) => {
      const head = await t.store.headPosition();
      await assert.rejects(
        t.ledger.legacyReencryption.reencryptData(hash, data),
        (e: unknown) => isKeyledgerError(e, 'ERR_LEGACY_KEY_UNUSABLE') && check(e.details),
      );
      await assert.rejects(t.ledger.legacyReencryption.start('refused', hash), (e: unknown) =>
        isKeyledgerError(e, 'ERR_LEGACY_KEY_UNUSABLE'),
      );
      assert.equal(await t.store.headPosition(), head);
    };
    await expectUnusable('no-such-hash', (d) => d.scope === null && d.state === null);
    await expectUnusable('A'.repeat(43), (d) => d.scope === null);
    const active = (await t.ledger.admin.getManagedKeys(T1, 'orders')).find((k) => k.state === 'ACTIVE');
    assert.ok(active !== undefined);
    await expectUnusable(active.metadataHash, (d) => d.imported === false && d.state === 'ACTIVE');
    await t.ledger.admin.disableManagedKey(T1, 'orders', t.hash);
    await expectUnusable(t.hash, (d) => d.imported === true && d.state === 'DISABLED');
  });

  it('whether a key was imported: the scope’s stream is read once per key, and the answers are the stream’s', async () => {
    /** Counts the reads of one stream (the scope's), whoever makes them. */
    class CountingStore extends MemoryEventStore {
      counted: string | null = null;
      reads = 0;
      override async readStream(stream: string, options?: { readonly fromRevision?: bigint }) {
        if (stream === this.counted) this.reads++;
        return super.readStream(stream, options);
      }
    }
    const store = new CountingStore();
    await using t = await setup(store);
    const active = (await t.ledger.admin.getManagedKeys(T1, 'orders')).find((k) => k.state === 'ACTIVE');
    assert.ok(active !== undefined);
    store.counted = t.ledger.streamNames.scope(orders);
    // What the stream says, folded here without the ledger: the keys ManagedKeyImported brought in.
    const importedIds = async () =>
      (await store.readStream(t.ledger.streamNames.scope(orders)))
        .map(parseLedgerEvent)
        .flatMap((e) => (e.type === 'ManagedKeyImported' ? [e.data.key.keyId] : []));
    /** The ledger's answer for a key: usable (imported), or refused saying whether it was imported. */
    const answer = async (ledger: Ledger, hash: string) => {
      try {
        await ledger.legacyReencryption.reencryptData(hash, legacyEncrypt(t.oldKey, 'x'));
        return 'usable';
      } catch (error) {
        assert.ok(isKeyledgerError(error, 'ERR_LEGACY_KEY_UNUSABLE'));
        return `refused, imported: ${String(error.details.imported)}`;
      }
    };

    // The imported key: read once, then every file and campaign start is answered without a read.
    store.reads = 0;
    for (let i = 0; i < 3; i++) assert.equal(await answer(t.ledger, t.hash), 'usable');
    await (await t.ledger.legacyReencryption.start('once', t.hash)).complete();
    assert.equal(store.reads, 1);
    // A key that was not imported: the same, refused every time.
    store.reads = 0;
    for (let i = 0; i < 3; i++)
      assert.equal(await answer(t.ledger, active.metadataHash), 'refused, imported: false');
    await assert.rejects(t.ledger.legacyReencryption.start('never', active.metadataHash), (e: unknown) =>
      isKeyledgerError(e, 'ERR_LEGACY_KEY_UNUSABLE'),
    );
    assert.equal(store.reads, 1);
    const ids = await importedIds();
    const imported = (await t.ledger.admin.getManagedKeys(T1, 'orders')).find(
      (k) => k.metadataHash === t.hash,
    );
    assert.deepEqual(ids, [imported?.keyId]);

    // What the answer being fixed rests on: a key the scope knows is never imported afterwards (here
    // the ACTIVE key's own bytes, under their alias: nothing is written), so the stream's answer and
    // the remembered one stay the same; a new process, remembering nothing, answers alike.
    const head = await store.headPosition();
    await t.ledger.imports.importManagedKey(T1, 'orders', 'orders-2026', 'ACTIVE');
    assert.equal(await store.headPosition(), head);
    assert.deepEqual(await importedIds(), ids);
    assert.equal(await answer(t.ledger, active.metadataHash), 'refused, imported: false');
    const fresh = await open(store, t.provider);
    try {
      assert.equal(await answer(fresh, t.hash), 'usable');
      assert.equal(await answer(fresh, active.metadataHash), 'refused, imported: false');
    } finally {
      await fresh.close();
    }
  });
});

describe('legacy re-encryption campaigns (records held elsewhere)', () => {
  it('batches: envelopes to store, a corrupted record reported by id without stopping, progress as events', async () => {
    await using t = await setup();
    const rows = records(t.oldKey, ['r1', 'r2', 'r3', 'r4', 'r5']);
    const broken = rows[2] as LegacyRecord;
    const corrupted = Buffer.from(broken.data);
    corrupted[corrupted.length - 1] = (corrupted[corrupted.length - 1] as number) ^ 0xff;
    rows[2] = { ...broken, data: corrupted };
    const db = new Map<string, Buffer>();
    const campaign = await t.ledger.legacyReencryption.start('orders-2019', t.hash, {
      total: rows.length,
      actor: 'alice',
      reason: 'migration',
    });
    for (let i = 0; i < rows.length; i += 2) {
      await campaign.run(rows.slice(i, i + 2), async (batch) => {
        for (const r of batch.results) if (r.status === 'reencrypted') db.set(r.id, r.envelope);
      });
    }
    const done = await campaign.complete();
    assert.equal(done.completed, true);
    assert.equal(done.reencrypted, 4);
    assert.equal(done.failed, 1);
    assert.deepEqual(done.failedIds, ['r3']);
    assert.equal(done.lastRecordId, 'r5');
    assert.equal(done.batches, 3);
    for (const [id, envelope] of db) {
      const pt = await t.ledger.envelope.decrypt(envelope, { aad: Buffer.from(`orders/${id}`) });
      assert.equal(pt.toString(), `row ${id}`);
    }
    const events = await t.store.readStream(t.ledger.streamNames.reencryption);
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'LegacyReencryptionStarted',
        'LegacyReencryptionProgressed',
        'LegacyReencryptionProgressed',
        'LegacyReencryptionProgressed',
        'LegacyReencryptionCompleted',
      ],
    );
    assert.equal((events[0]?.metadata as { actor?: string } | undefined)?.actor, 'alice');
    // No record content and no key bytes in any event.
    const bytes = Buffer.from(t.oldKey).toString('base64');
    for await (const e of t.store.readAll({})) {
      const text = JSON.stringify(e.data);
      assert.ok(!text.includes(bytes) && !text.includes('row r'), `${e.type} holds no secrets`);
    }
    // The campaign's events are chained and checkpointed like every other stream's.
    await t.ledger.checkpoint();
    assert.equal((await t.ledger.verify()).ok, true);
    await assert.rejects(campaign.complete(), (e: unknown) =>
      isKeyledgerError(e, 'ERR_REENCRYPTION_COMPLETED'),
    );
    await assert.rejects(campaign.reencrypt(rows.slice(0, 1)), (e: unknown) =>
      isKeyledgerError(e, 'ERR_REENCRYPTION_COMPLETED'),
    );
  });

  it('records without AAD; a record already in keyledger’s envelope comes back skipped', async () => {
    await using t = await setup();
    const rows = records(t.oldKey, ['a', 'b'], false);
    const campaign = await t.ledger.legacyReencryption.start('no-aad', t.hash);
    const first = await campaign.reencrypt(rows);
    const a = first.results[0];
    assert.ok(a?.status === 'reencrypted');
    assert.equal((await t.ledger.envelope.decrypt(a.envelope)).toString(), 'row a');
    // The caller stored the envelopes, then crashed before the checkpoint: the batch comes round again.
    const again = await campaign.reencrypt([{ id: 'a', data: a.envelope }, rows[1] as LegacyRecord]);
    assert.deepEqual(
      again.results.map((r) => r.status),
      ['skipped', 'reencrypted'],
    );
    const info = await campaign.checkpoint(again);
    assert.deepEqual([info.reencrypted, info.skipped, info.failed], [1, 1, 0]);
  });

  it('resumes after a crash: a new Ledger on the same store continues after the recorded checkpoint', async () => {
    const store = new MemoryEventStore();
    const provider = new ScriptedProvider();
    const first = await open(store, provider);
    await first.initialise();
    provider.setKey(legacy, 'table-orders');
    provider.setKey(orders, 'orders-2026');
    const hash = (await first.imports.importManagedKey(T1, 'orders', 'table-orders', 'INACTIVE')).key
      .metadataHash;
    await first.admin.enableKeyManagement(T1, 'orders');
    const key = provider.bytesOf('table-orders') as Uint8Array;
    const rows = records(key, ['001', '002', '003', '004', '005', '006']);
    const running = await first.legacyReencryption.start('resumable', hash, { total: 6 });
    await running.run(rows.slice(0, 2), async () => {});
    await running.run(rows.slice(2, 4), async () => {});
    // Batch 3 was re-encrypted but the process died before it stored and checkpointed it.
    await running.reencrypt(rows.slice(4, 6));
    await first.close();

    const second = await open(store, provider);
    try {
      const resumed = await second.legacyReencryption.resume('resumable');
      const info = await resumed.info();
      assert.equal(info.lastRecordId, '004');
      assert.equal(info.batches, 2);
      const from = rows.findIndex((r) => r.id === info.lastRecordId) + 1;
      await resumed.run(rows.slice(from), async () => {});
      const done = await resumed.complete();
      assert.deepEqual([done.reencrypted, done.failed, done.lastRecordId], [6, 0, '006']);
      const [status] = await second.legacyReencryption.status('resumable');
      assert.equal(status?.completed, true);
      await assert.rejects(second.legacyReencryption.resume('resumable'), (e: unknown) =>
        isKeyledgerError(e, 'ERR_REENCRYPTION_COMPLETED'),
      );
    } finally {
      await second.close();
    }
  });

  it('bad input: unknown campaign, a name used twice, a bad name, an empty or oversize batch — nothing written', async () => {
    await using t = await setup();
    await t.ledger.legacyReencryption.start('once', t.hash);
    const head = await t.store.headPosition();
    await assert.rejects(t.ledger.legacyReencryption.resume('never-started'), (e: unknown) =>
      isKeyledgerError(e, 'ERR_REENCRYPTION_NOT_FOUND'),
    );
    await assert.rejects(t.ledger.legacyReencryption.start('once', t.hash), (e: unknown) =>
      isKeyledgerError(e, 'ERR_INVALID_ARGUMENT'),
    );
    await assert.rejects(t.ledger.legacyReencryption.start('has space', t.hash), (e: unknown) =>
      isKeyledgerError(e, 'ERR_INVALID_ARGUMENT'),
    );
    const campaign = await t.ledger.legacyReencryption.resume('once');
    await assert.rejects(campaign.reencrypt([]), (e: unknown) => isKeyledgerError(e, 'ERR_INVALID_ARGUMENT'));
    const many = Array.from({ length: 1001 }, (_, i) => ({ id: String(i), data: Buffer.alloc(40) }));
    await assert.rejects(campaign.reencrypt(many), (e: unknown) =>
      isKeyledgerError(e, 'ERR_INVALID_ARGUMENT'),
    );
    await assert.rejects(campaign.reencrypt([{ id: '', data: Buffer.alloc(40) }]), (e: unknown) =>
      isKeyledgerError(e, 'ERR_INVALID_ARGUMENT'),
    );
    assert.equal(await t.store.headPosition(), head);
  });

  it('the legacy key disabled mid-campaign stops it with ERR_LEGACY_KEY_UNUSABLE (not a record failure)', async () => {
    await using t = await setup();
    const campaign = await t.ledger.legacyReencryption.start('stopped', t.hash);
    await t.ledger.admin.disableManagedKey(T1, 'orders', t.hash);
    await assert.rejects(
      campaign.reencrypt(records(t.oldKey, ['x'])),
      (e: unknown) => isKeyledgerError(e, 'ERR_LEGACY_KEY_UNUSABLE') && e.details.state === 'DISABLED',
    );
  });
});
