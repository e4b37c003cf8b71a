import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { emptyKeymetaView, evolveKeymeta } from '../../projections/keymeta.js';
import { keymetaFromSnapshot, keymetaToSnapshot } from '../../projections/keymetaSnapshot.js';
import { materialHashOf } from '../../src/domain/decideDestroy.js';
import {
  type DomainEvent,
  type LedgerEvent,
  parseEventOf,
  parseLedgerEvent,
  SCHEMA_VERSION,
} from '../../src/domain/events.js';
import { type KeyId, keyScope } from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import type { KeyInfo } from '../../src/ledger/keyInfo.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { EventStore, RecordedEvent } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { SqliteEventStore } from '../../src/store/sqliteEventStore.js';
import { plainScopes } from '../helpers/keymetaViews.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * Crypto-shredding through the ledger (docs/audit.md), on memory and sqlite: schedule, cancel,
 * destruction when due on the ledger's clock (never by sleeping), the receipt, the material gone
 * from the store, decryption refused everywhere, a run interrupted between event and deletion,
 * and every bad input refused with its code and nothing written.
 */

const CUST = Buffer.from('tenant-1').toString('base64');
const NS = 'orders';
const scope = keyScope(CUST, NS);
const DAY = 86_400_000;
const PLAINTEXT = Buffer.from('customer record 42');
const TARGET = { custodian: CUST, namespaces: [NS] };

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-destroy-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

let dbCount = 0;
const STORES = {
  memory: () => ({ store: new MemoryEventStore() as EventStore, path: null }),
  sqlite: () => {
    const path = join(dir, `destroy-${++dbCount}.db`);
    return { store: SqliteEventStore.open(path, { pollIntervalMs: 5 }) as EventStore, path };
  },
} as const;

/** The ledger's clock, moved by the tests: destructions fall due without anyone sleeping. */
class Clock {
  ms = Date.UTC(2025, 0, 1);
  readonly now = () => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Fails deleteStream while `failing` is set: a process that stops between event and deletion. */
class FailingDeletes extends ForwardingEventStore {
  failing = false;
  override async deleteStream(stream: string): Promise<void> {
    if (this.failing) throw new Error('the process died here');
    return this.inner.deleteStream(stream);
  }
}

async function allEvents(store: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const e of store.readAll()) events.push(e);
  return events;
}

/** Asserts the call fails with `code` and that the store did not change. */
async function rejectsWithNothingWritten(store: EventStore, call: () => Promise<unknown>, code: string) {
  const before = await store.headPosition();
  await assert.rejects(call, (error: { code?: string; message?: string }) => {
    assert.equal(error.code, code, error.message);
    return true;
  });
  assert.equal(await store.headPosition(), before, 'nothing may be appended');
}

for (const [kind, makeStore] of Object.entries(STORES)) {
  describe(`crypto-shredding on ${kind}`, () => {
    /**
     * k1 (used to encrypt `ciphertext`) then k2 by rotation: k1 INACTIVE, k2 ACTIVE. The returned
     * `open` opens further ledgers on the same store (other processes, as far as the ledger knows).
     */
    async function setup(options: { destroyGracePeriodMs?: number; failingDeletes?: boolean } = {}) {
      const made = makeStore();
      const store = options.failingDeletes ? new FailingDeletes(made.store) : made.store;
      const provider = new ScriptedProvider();
      const clock = new Clock();
      const ledgers: Ledger[] = [];
      const open = async () => {
        const ledger = await Ledger.open({
          store,
          provider,
          actor: 'test',
          now: clock.now,
          destroyGracePeriodMs: options.destroyGracePeriodMs,
        });
        ledgers.push(ledger);
        return ledger;
      };
      const ledger = await open();
      await ledger.initialise();
      provider.setKey(scope, 'k1');
      const k1 = (await ledger.admin.enableKeyManagement(CUST, NS)).key as KeyInfo;
      const ciphertext = await ledger.envelope.encrypt(PLAINTEXT, TARGET);
      provider.setKey(scope, 'k2');
      const k2 = (await ledger.admin.rotateManagedKey(CUST, NS))?.key as KeyInfo;
      let closed = false;
      const close = async () => {
        if (closed) return;
        closed = true;
        for (const l of ledgers) await l.close();
        await store.close();
      };
      return { store, path: made.path, provider, clock, ledger, open, k1, k2, ciphertext, close };
    }

    it('schedules after the grace period, shows it, and a cancel leaves the key as it was', async () => {
      const { store, clock, ledger, k1, ciphertext, close } = await setup();
      try {
        const scheduled = await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, {
          graceMs: DAY,
          reason: 'retire 2024 data',
        });
        assert.notEqual(scheduled.position, null);
        assert.equal(scheduled.key.state, 'INACTIVE');
        assert.equal(scheduled.key.destructionDueAt, new Date(clock.ms + DAY).toISOString());
        const status = await ledger.admin.getScopeStatus(CUST, NS);
        assert.deepEqual(
          status.keys.map((k) => [k.state, k.destructionDueAt]),
          [
            ['INACTIVE', new Date(clock.ms + DAY).toISOString()],
            ['ACTIVE', null],
          ],
        );
        // During the grace period an INACTIVE key still decrypts: nothing is destroyed yet.
        assert.deepEqual(await ledger.envelope.decrypt(ciphertext), PLAINTEXT);

        const cancelled = await ledger.destruction.cancelKeyDestruction(CUST, NS, k1.metadataHash);
        assert.equal(cancelled.key.destructionDueAt, null);
        assert.equal(cancelled.key.state, 'INACTIVE');
        clock.advance(2 * DAY);
        const head = await store.headPosition();
        assert.deepEqual(await ledger.destruction.destroyDueKeys(), { destroyed: [], leftoversDeleted: [] });
        assert.equal(await store.headPosition(), head, 'a run with nothing due writes nothing');
        assert.equal((await store.readStream(ledger.streamNames.material(k1.keyId))).length, 1);
        assert.deepEqual(await ledger.envelope.decrypt(ciphertext), PLAINTEXT);
        assert.deepEqual(
          (await ledger.history(CUST, NS)).map((h) => h.type),
          [
            'KeyManagementEnabled',
            'ManagedKeyRotated',
            'ManagedKeyDestructionScheduled',
            'ManagedKeyDestructionCancelled',
          ],
        );
      } finally {
        await close();
      }
    });

    it('when due: receipt, material gone from the store, history kept, decryption refused in every process', async () => {
      const { store, path, clock, ledger, open, k1, ciphertext, close } = await setup();
      try {
        const materialStream = ledger.streamNames.material(k1.keyId);
        const material = await store.readStream(materialStream);
        const [wrappedEvent] = material.map((r) => parseEventOf(r, ['KeyMaterialWrapped']));
        assert.ok(wrappedEvent !== undefined);
        const wrapped = wrappedEvent.data.wrapped;

        // Another process holds k1 in its cache (it decrypted with it).
        const other = await open();
        assert.deepEqual(await other.envelope.decrypt(ciphertext), PLAINTEXT);
        const held = await other.resolver.resolveForDecrypt(k1.keyId);
        assert.ok(held !== null && !held.key.isZeroed);

        const scheduledAt = clock.now().toISOString();
        await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 7 * DAY });
        clock.advance(7 * DAY - 1);
        assert.deepEqual((await ledger.destruction.destroyDueKeys()).destroyed, [], 'not due 1 ms early');
        clock.advance(1);
        const run = await ledger.destruction.destroyDueKeys({ actor: 'shredder', reason: 'retention ended' });
        assert.equal(run.destroyed.length, 1);
        const [receipt] = run.destroyed;
        assert.ok(receipt !== undefined);
        assert.deepEqual(
          { ...receipt, position: undefined },
          {
            custodian: CUST,
            namespace: NS,
            keyId: k1.keyId,
            metadataHash: k1.metadataHash,
            previousState: 'INACTIVE',
            materialStream,
            materialEvents: 1,
            materialHash: materialHashOf(
              material.map((r) => {
                const e = parseEventOf(r, ['KeyMaterialWrapped']);
                return { revision: r.revision, eventId: r.eventId, ...e.data };
              }),
            ),
            scheduledAt,
            dueAt: new Date(Date.parse(scheduledAt) + 7 * DAY).toISOString(),
            destroyedAt: clock.now().toISOString(),
            actor: 'shredder',
            reason: 'retention ended',
            position: undefined,
          },
        );
        assert.deepEqual(run.leftoversDeleted, []);

        // The material is gone from the store: its stream, readAll, the stored snapshot.
        assert.deepEqual(await store.readStream(materialStream), []);
        const everything = await allEvents(store);
        assert.ok(everything.every((e) => e.streamName !== materialStream));
        assert.ok(
          !everything.some((e) => JSON.stringify(e.data).includes(wrapped)),
          'no event holds the wrapped key',
        );
        const snapshot = await store.loadSnapshot(ledger.streamNames.keymetaSnapshot);
        assert.ok(snapshot !== null && !JSON.stringify(snapshot.state).includes(wrapped));

        // History stays readable, with the destruction and its receipt.
        const history = await ledger.history(CUST, NS);
        const last = history.at(-1);
        assert.equal(last?.type, 'ManagedKeyDestroyed');
        assert.equal(last?.actor, 'shredder');
        assert.deepEqual(
          last?.keys.map((k) => [k.keyId, k.from, k.to]),
          [[k1.keyId, 'INACTIVE', 'DESTROYED']],
        );
        assert.deepEqual(await ledger.destruction.destructionReceipts(CUST, NS), [receipt]);

        // Decryption fails like any other unusable key, here and in the other process, whose
        // cached copy was evicted and zeroed.
        await other.waitForPosition(receipt.position);
        assert.equal(held.key.isZeroed, true);
        for (const l of [ledger, other, await open()]) {
          await assert.rejects(l.envelope.decrypt(ciphertext), { code: 'ERR_DECRYPTION_FAILED' });
          assert.equal(await l.resolver.resolveForDecrypt(k1.keyId), null);
          const status = await l.admin.getScopeStatus(CUST, NS);
          assert.deepEqual(
            status.keys.map((k) => k.state),
            ['DESTROYED', 'ACTIVE'],
          );
        }
        // New data still encrypts (under k2).
        assert.deepEqual(
          await ledger.envelope.decrypt(await ledger.envelope.encrypt(PLAINTEXT, TARGET)),
          PLAINTEXT,
        );

        // Idempotent: a second run finds nothing to do and writes nothing.
        const head = await store.headPosition();
        assert.deepEqual(await ledger.destruction.destroyDueKeys(), { destroyed: [], leftoversDeleted: [] });
        assert.equal(await store.headPosition(), head);

        if (path !== null) {
          // secure_delete and the checkpoints after the delete and the snapshot that replaced the
          // one holding the material: no file keeps the bytes, already while the ledger is open.
          const scan = (when: string) => {
            for (const file of [path, `${path}-wal`, `${path}-shm`]) {
              if (!existsSync(file)) continue;
              const bytes = readFileSync(file);
              assert.ok(!bytes.includes(wrapped), `${file} holds the material ${when}`);
              assert.ok(!bytes.includes(Buffer.from(wrapped, 'base64')), `${file} holds it decoded ${when}`);
            }
          };
          scan('while open');
          await close();
          scan('after close');
        }
      } finally {
        await close();
      }
    });

    it('a DISABLED key is destroyed too; the ledger default grace period applies without graceMs', async () => {
      const { clock, ledger, k1, close } = await setup({ destroyGracePeriodMs: 3_600_000 });
      try {
        await ledger.admin.disableManagedKey(CUST, NS, k1.metadataHash);
        const scheduled = await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash);
        assert.equal(scheduled.key.destructionDueAt, new Date(clock.ms + 3_600_000).toISOString());
        clock.advance(3_600_000);
        const [receipt] = (await ledger.destruction.destroyDueKeys()).destroyed;
        assert.equal(receipt?.previousState, 'DISABLED');
      } finally {
        await close();
      }
    });

    it('a rewrap after the destruction leaves the destroyed key alone (no material comes back)', async () => {
      const { store, clock, ledger, provider, k1, k2, close } = await setup();
      try {
        await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
        await ledger.destruction.destroyDueKeys();
        provider.rotateSystemKey('stk-2');
        assert.equal((await ledger.admin.rotateSTK()).changed, true);
        clock.advance(1000);
        assert.equal((await ledger.rewrap.status()).pending, 1, 'only k2 is waiting for a rewrap');
        assert.equal((await ledger.rewrap.start()).status, 'finished');
        assert.deepEqual(await store.readStream(ledger.streamNames.material(k1.keyId)), []);
        assert.equal((await store.readStream(ledger.streamNames.material(k2.keyId))).length, 2);
      } finally {
        await close();
      }
    });

    it('a run stopped between event and deletion leaves a DESTROYED key; the next run deletes the rest', async () => {
      const { store, clock, ledger, open, k1, ciphertext, close } = await setup({ failingDeletes: true });
      try {
        const materialStream = ledger.streamNames.material(k1.keyId);
        await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
        assert.ok(store instanceof FailingDeletes);
        store.failing = true;
        await assert.rejects(ledger.destruction.destroyDueKeys(), /the process died here/);
        store.failing = false;

        // The receipt is recorded and the key can never be used again, though its material is still there.
        assert.equal((await ledger.history(CUST, NS)).at(-1)?.type, 'ManagedKeyDestroyed');
        assert.equal((await store.readStream(materialStream)).length, 1);
        await assert.rejects(ledger.envelope.decrypt(ciphertext), { code: 'ERR_DECRYPTION_FAILED' });
        // A process replaying from the start meets the material before the destruction (as on
        // EventStoreDB before a scavenge) and still never uses it.
        const fresh = await open();
        await assert.rejects(fresh.envelope.decrypt(ciphertext), { code: 'ERR_DECRYPTION_FAILED' });

        clock.advance(DAY);
        const head = await store.headPosition();
        const run = await fresh.destruction.destroyDueKeys();
        assert.deepEqual(run, { destroyed: [], leftoversDeleted: [k1.keyId] });
        assert.deepEqual(await store.readStream(materialStream), []);
        assert.equal(await store.headPosition(), head, 'finishing writes no second receipt');
        assert.equal((await ledger.destruction.destructionReceipts(CUST, NS)).length, 1);
        assert.deepEqual(await fresh.destruction.destroyDueKeys(), { destroyed: [], leftoversDeleted: [] });
      } finally {
        await close();
      }
    });

    it('two processes running due destructions at once record one destruction', async () => {
      const { store, clock, ledger, open, k1, close } = await setup();
      try {
        const other = await open();
        await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: DAY });
        await other.waitForPosition(ledger.position);
        clock.advance(DAY);
        const runs = await Promise.all([
          ledger.destruction.destroyDueKeys(),
          other.destruction.destroyDueKeys(),
        ]);
        assert.equal(runs.flatMap((r) => r.destroyed).length, 1);
        const destroyedEvents = (await allEvents(store)).filter((e) => e.type === 'ManagedKeyDestroyed');
        assert.equal(destroyedEvents.length, 1);
        assert.deepEqual(await store.readStream(ledger.streamNames.material(k1.keyId)), []);
      } finally {
        await close();
      }
    });

    it('refuses every bad input with its code and writes nothing', async () => {
      const { store, clock, ledger, provider, k1, k2, close } = await setup();
      try {
        const admin = ledger.admin;
        const destruction = ledger.destruction;
        const other = keyScope(Buffer.from('tenant-2').toString('base64'), NS);
        // The ACTIVE key.
        await rejectsWithNothingWritten(
          store,
          () => destruction.scheduleKeyDestruction(CUST, NS, k2.metadataHash),
          'ERR_KEY_ACTIVE',
        );
        // Unknown scope, unknown key, malformed input.
        await rejectsWithNothingWritten(
          store,
          () => destruction.scheduleKeyDestruction(other.custodian, NS, k1.metadataHash),
          'ERR_SCOPE_NOT_FOUND',
        );
        await rejectsWithNothingWritten(
          store,
          () => destruction.cancelKeyDestruction(other.custodian, NS, k1.metadataHash),
          'ERR_SCOPE_NOT_FOUND',
        );
        const unknownHash = 'A'.repeat(43);
        await rejectsWithNothingWritten(
          store,
          () => destruction.scheduleKeyDestruction(CUST, NS, unknownHash),
          'ERR_KEY_NOT_FOUND',
        );
        await rejectsWithNothingWritten(
          store,
          () => destruction.cancelKeyDestruction(CUST, NS, unknownHash),
          'ERR_KEY_NOT_FOUND',
        );
        await rejectsWithNothingWritten(
          store,
          () => destruction.scheduleKeyDestruction(CUST, NS, 'not-a-hash'),
          'ERR_INVALID_METADATA',
        );
        await rejectsWithNothingWritten(
          store,
          () => destruction.scheduleKeyDestruction('', NS, k1.metadataHash),
          'ERR_INVALID_CUSTODIAN',
        );
        for (const graceMs of [-1, 0.5, 3651 * DAY]) {
          await rejectsWithNothingWritten(
            store,
            () => destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs }),
            'ERR_INVALID_ARGUMENT',
          );
        }
        // Cancel with nothing scheduled.
        await rejectsWithNothingWritten(
          store,
          () => destruction.cancelKeyDestruction(CUST, NS, k1.metadataHash),
          'ERR_KEY_DESTRUCTION_NOT_SCHEDULED',
        );

        await destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: DAY });
        // Scheduled twice; made ACTIVE while scheduled (the provider is not even asked).
        await rejectsWithNothingWritten(
          store,
          () => destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 }),
          'ERR_KEY_DESTRUCTION_SCHEDULED',
        );
        const calls = provider.calls;
        await rejectsWithNothingWritten(
          store,
          () => admin.setManagedKey(CUST, NS, k1.metadata),
          'ERR_KEY_DESTRUCTION_SCHEDULED',
        );
        assert.equal(provider.calls, calls);

        clock.advance(DAY);
        await destruction.destroyDueKeys();
        // Cancelling a destruction that already ran; destroying again; using the destroyed key.
        await rejectsWithNothingWritten(
          store,
          () => destruction.cancelKeyDestruction(CUST, NS, k1.metadataHash),
          'ERR_KEY_DESTROYED',
        );
        await rejectsWithNothingWritten(
          store,
          () => destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash),
          'ERR_KEY_DESTROYED',
        );
        await rejectsWithNothingWritten(
          store,
          () => admin.setManagedKey(CUST, NS, k1.metadata),
          'ERR_KEY_DESTROYED',
        );
        await rejectsWithNothingWritten(
          store,
          () => admin.enableManagedKey(CUST, NS, k1.metadataHash),
          'ERR_KEY_NOT_DISABLED',
        );
        await rejectsWithNothingWritten(
          store,
          () => admin.disableManagedKey(CUST, NS, k1.metadataHash),
          'ERR_KEY_ALREADY_DISABLED',
        );
      } finally {
        await close();
      }
    });
  });
}

describe('crypto-shredding: ledger set-up', () => {
  it('refuses a bad default grace period at open (API misuse), and runs nothing on an uninitialised ledger', async () => {
    const store = new MemoryEventStore();
    const provider = new ScriptedProvider();
    for (const destroyGracePeriodMs of [-1, 1.5, Number.NaN, 3651 * DAY]) {
      await assert.rejects(Ledger.open({ store, provider, destroyGracePeriodMs }), TypeError);
    }
    const ledger = await Ledger.open({ store, provider });
    try {
      await rejectsWithNothingWritten(
        store,
        () => ledger.destruction.destroyDueKeys(),
        'ERR_LEDGER_NOT_INITIALISED',
      );
    } finally {
      await ledger.close();
      await store.close();
    }
  });
});

describe('keymeta fold and snapshot (crypto-shredding)', () => {
  const keyId = 'ab'.repeat(16) as KeyId;
  let position = 0n;
  const at = (n: number) => new Date(Date.UTC(2025, 0, 1) + n * 60_000).toISOString();
  function stored(event: DomainEvent, stream: string): LedgerEvent {
    position += 1n;
    return parseLedgerEvent({
      streamName: stream,
      revision: position,
      position,
      type: event.type,
      data: JSON.parse(JSON.stringify(event.data)),
      metadata: {
        schemaVersion: SCHEMA_VERSION,
        actor: 'test',
        reason: null,
        correlationId: 'c',
        causationId: null,
        occurredAt: at(Number(position)),
      },
    });
  }
  const hash = metadataHashOf('{"KeyAlias":"k1"}');
  const material = (wrapped: string): DomainEvent => ({
    type: 'KeyMaterialWrapped',
    data: {
      ...scope,
      keyId,
      metadataHash: hash,
      stkIdentity: '0123456789abcdef',
      algorithm: 'AES-256-GCM',
      wrapped,
    },
  });
  const record = {
    keyId,
    metadata: '{"KeyAlias":"k1"}',
    metadataHash: hash,
    checksum: '0'.repeat(16),
    stkIdentity: '0123456789abcdef',
  };
  const events: DomainEvent[] = [
    material('d3JhcHBlZC0x'),
    { type: 'KeyManagementEnabled', data: { ...scope, key: record, previousKeyId: null } },
    { type: 'KeyManagementDisabled', data: { ...scope, deactivatedKeyIds: [keyId] } },
    { type: 'ManagedKeyDestructionScheduled', data: { ...scope, keyId, state: 'INACTIVE', dueAt: at(10) } },
  ];

  it('keeps the schedule through a snapshot, and never holds a destroyed key’s material, even replayed around it', () => {
    let view = emptyKeymetaView();
    for (const e of events) view = evolveKeymeta(view, stored(e, 'kl-x'));
    assert.equal(view.materials.has(keyId), true);
    const restored = keymetaFromSnapshot(keymetaToSnapshot(view), view.position);
    assert.deepEqual(plainScopes(restored?.scopes), plainScopes(view.scopes));
    assert.deepEqual(
      [...(restored?.scopes.values() ?? [])].flatMap((s) =>
        [...s.keys.values()].map((k) => k.destruction?.dueAt),
      ),
      [at(10)],
    );

    view = evolveKeymeta(
      view,
      stored(
        {
          type: 'ManagedKeyDestroyed',
          data: {
            ...scope,
            keyId,
            metadataHash: hash,
            previousState: 'INACTIVE',
            receipt: {
              materialStream: 'kl-material-x',
              materialEvents: 1,
              materialHash: 'f'.repeat(64),
              scheduledAt: at(4),
              dueAt: at(10),
            },
          },
        },
        'kl-x',
      ),
    );
    assert.equal(view.materials.has(keyId), false);
    // A copy written after the destruction (a rewrap racing it) is not taken up either.
    view = evolveKeymeta(view, stored(material('d3JhcHBlZC0y'), 'kl-x'));
    assert.equal(view.materials.has(keyId), false);
    assert.ok(!JSON.stringify(keymetaToSnapshot(view)).includes('d3JhcHBlZC0'));
  });
});

describe('crypto-shredding on sqlite leaves no copy in the files while the ledger is open', () => {
  /** Every file of the database that holds `needle` (as stored: base64 in JSON), by suffix. */
  function filesHolding(path: string, needle: string): string[] {
    const decoded = Buffer.from(needle, 'base64');
    return ['', '-wal', '-shm'].filter((suffix) => {
      const file = `${path}${suffix}`;
      if (!existsSync(file)) return false;
      const bytes = readFileSync(file);
      return bytes.includes(needle) || bytes.includes(decoded);
    });
  }

  it('the material stream and the snapshot that held the material are gone from .db, -wal and -shm when destroyDueKeys returns', async () => {
    const path = join(dir, 'destroy-open-scan.db');
    const store = SqliteEventStore.open(path, { pollIntervalMs: 5 });
    const provider = new ScriptedProvider();
    const clock = new Clock();
    // A snapshot after every event: the stored view holds the wrapped material, as it does in a
    // long-lived ledger whose periodic snapshot came after the key was made.
    const ledger = await Ledger.open({ store, provider, actor: 'test', now: clock.now, snapshotEvery: 1 });
    try {
      await ledger.initialise();
      provider.setKey(scope, 'k1');
      const k1 = (await ledger.admin.enableKeyManagement(CUST, NS)).key as KeyInfo;
      provider.setKey(scope, 'k2');
      await ledger.admin.rotateManagedKey(CUST, NS);
      const [event] = (await store.readStream(ledger.streamNames.material(k1.keyId))).map((r) =>
        parseEventOf(r, ['KeyMaterialWrapped']),
      );
      assert.ok(event !== undefined);
      const wrapped = event.data.wrapped;
      // The scope's row of the keymeta snapshot holds its keys' material.
      const row = await store.loadSnapshotRow(`${ledger.streamNames.prefix}keymeta`, `${CUST}:${NS}`);
      assert.ok(row?.includes(wrapped), 'the snapshot holds it');
      assert.notDeepEqual(filesHolding(path, wrapped), [], 'the files hold it before');

      await ledger.destruction.scheduleKeyDestruction(CUST, NS, k1.metadataHash, { graceMs: 0 });
      assert.equal((await ledger.destruction.destroyDueKeys()).destroyed.length, 1);
      assert.deepEqual(filesHolding(path, wrapped), [], 'no file may hold the destroyed material');
    } finally {
      await ledger.close();
      await store.close();
    }
  });
});
