import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { keyScope } from '../../src/domain/identities.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { EsdbEventStore } from '../../src/store/esdbEventStore.js';
import type {
  AppendResult,
  EventToAppend,
  ExpectedRevision,
  RecordedEvent,
} from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { openEventStore } from '../../src/store/storeUrl.js';
import { type EsdbTestServer, startEsdbTestServer } from '../esdb/esdbTestServer.js';
import { closedPort } from '../helpers/closedPort.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

/**
 * Faults of the EventStoreDB adapter, against the protocol-level test server: the server going
 * away under a live subscription and coming back with its data, a lost race during an admin
 * operation, and a server that is not there at all.
 */

const CUST = Buffer.from('tenant-faults').toString('base64');
/** Long enough for a resubscription (backoff up to 1 s) and a delivery on a busy machine. */
const WAIT_MS = 15_000;

function event(i: number): EventToAppend {
  return { eventId: randomUUID(), type: 'Faulted', data: { i }, metadata: {} };
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The keymeta view as a ledger's projector and resolver (L2) see it, for each namespace. */
async function viewOf(ledger: Ledger, namespaces: readonly string[]) {
  const view: Record<string, unknown> = { position: ledger.position, systemKeys: ledger.systemKeys() };
  for (const ns of namespaces) {
    const active = await ledger.resolver.resolveActive(ledger.resolver.target(CUST, [ns]));
    const keys = (await ledger.admin.getManagedKeys(CUST, ns)).map((key) => key.keyId);
    const usable = [];
    for (const keyId of keys) {
      const cached = await ledger.resolver.resolveForDecrypt(keyId);
      usable.push([keyId, cached?.state ?? null]);
    }
    view[ns] = { active: active?.key.keyId ?? null, usable };
  }
  return view;
}

describe('esdb faults: the server goes away under a live subscription', () => {
  let server: EsdbTestServer;

  before(async () => {
    server = await startEsdbTestServer();
  });
  after(async () => {
    await server.close();
  });

  it('a subscriber resumes after the server comes back: every event once, in order', async () => {
    const writer = EsdbEventStore.open(server.connectionString);
    const reader = EsdbEventStore.open(server.connectionString);
    const prefix = `resume-${randomUUID().slice(0, 8)}-`;
    const written: string[] = [];
    const received: RecordedEvent[] = [];
    const failures: unknown[] = [];
    const subscription = reader.subscribe({ streamPrefix: prefix }).subscribe({
      next: (recorded) => received.push(recorded),
      error: (error: unknown) => failures.push(error),
    });
    try {
      for (let i = 0; i < 5; i++) {
        const next = event(i);
        written.push(next.eventId);
        await writer.append(`${prefix}s`, [next], 'any');
      }
      await waitFor(() => received.length === 5, 'the first five events');
      const readsBefore = server.callCount('Read');

      await server.stop();
      await server.start();
      // Written at once, while the reader is still waiting to subscribe again: it must catch up.
      for (let i = 5; i < 10; i++) {
        const next = event(i);
        written.push(next.eventId);
        await writer.append(`${prefix}${i % 2 === 0 ? 's' : 't'}`, [next], 'any');
      }
      await waitFor(() => received.length >= 10 || failures.length > 0, 'ten events');
      await sleep(200);
      assert.deepEqual(failures, []);
      assert.deepEqual(
        received.map((recorded) => recorded.eventId),
        written,
        'none lost, none twice',
      );
      for (let i = 1; i < received.length; i++) {
        assert.ok((received[i]?.position ?? 0n) > (received[i - 1]?.position ?? 0n));
      }
      assert.ok(server.callCount('Read') > readsBefore, 'the reader subscribed again');
    } finally {
      subscription.unsubscribe();
      await reader.close();
      await writer.close();
    }
  });

  it("a subscribed ledger's keymeta view equals a fresh replay after the server came back", async () => {
    const provider = new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() });
    const stores = [0, 1, 2].map(() => EsdbEventStore.open(server.connectionString));
    const [writerStore, readerStore, freshStore] = stores as [EsdbEventStore, EsdbEventStore, EsdbEventStore];
    const prefix = `f${randomUUID().slice(0, 6).replace(/-/g, '')}-`;
    const writer = await Ledger.open({ store: writerStore, provider, prefix, actor: 'writer' });
    let reader: Ledger | undefined;
    let fresh: Ledger | undefined;
    try {
      await writer.initialise();
      await writer.admin.enableKeyManagement(CUST, 'orders');
      await writer.admin.enableKeyManagement(CUST, 'invoices');
      await writer.admin.rotateManagedKey(CUST, 'orders');

      reader = await Ledger.open({ store: readerStore, provider, prefix, actor: 'reader' });
      await reader.waitForPosition(writer.position);
      // Warm the reader's caches: invalidation must still reach them after the outage.
      const warm = await reader.resolver.resolveActive(reader.resolver.target(CUST, ['orders']));
      assert.ok(warm !== null);

      await server.stop();
      await server.start();

      const rotated = await writer.admin.rotateManagedKey(CUST, 'orders');
      const keys = await writer.admin.getManagedKeys(CUST, 'invoices');
      await writer.admin.disableManagedKey(CUST, 'invoices', keys[0]?.metadataHash ?? '');
      await writer.admin.enableKeyManagement(CUST, 'archive');

      await reader.waitForPosition(writer.position);
      assert.equal(
        warm.key.key.isZeroed,
        true,
        'the cached ACTIVE key was invalidated by the resumed subscription',
      );
      const afterOutage = await reader.resolver.resolveActive(reader.resolver.target(CUST, ['orders']));
      assert.equal(afterOutage?.key.keyId, rotated?.key.keyId);

      fresh = await Ledger.open({ store: freshStore, provider, prefix, actor: 'fresh' });
      const namespaces = ['orders', 'invoices', 'archive'];
      assert.deepEqual(await viewOf(reader, namespaces), await viewOf(fresh, namespaces));
    } finally {
      await fresh?.close();
      await reader?.close();
      await writer.close();
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('a call made while the server is down is retried until it comes back', async () => {
    const store = EsdbEventStore.open(server.connectionString);
    try {
      const stream = `retry-${randomUUID().slice(0, 8)}`;
      await store.append(stream, [event(0)], 'no_stream');
      await server.stop();
      const restart = sleep(300).then(() => server.start());
      const second = event(1);
      const result = await store.append(stream, [second], 0n);
      await restart;
      assert.equal(result.nextExpectedRevision, 1n);
      const read = await store.readStream(stream);
      assert.deepEqual(
        read.map((recorded) => recorded.eventId),
        [read[0]?.eventId, second.eventId],
      );
    } finally {
      await store.close();
    }
  });

  it('a subscription errors with ERR_STORE_UNAVAILABLE once the server stays away longer than resubscribeTimeoutMs', async () => {
    const own = await startEsdbTestServer();
    const store = EsdbEventStore.open(own.connectionString, { resubscribeTimeoutMs: 300 });
    try {
      const prefix = `giveup-${randomUUID().slice(0, 8)}-`;
      const received: RecordedEvent[] = [];
      let failure: unknown;
      const subscription = store.subscribe({ streamPrefix: prefix }).subscribe({
        next: (recorded) => received.push(recorded),
        error: (error: unknown) => {
          failure = error;
        },
      });
      await store.append(`${prefix}s`, [event(0)], 'any');
      await waitFor(() => received.length === 1, 'the first event');
      await own.stop();
      await waitFor(() => failure !== undefined, 'the subscription to give up');
      subscription.unsubscribe();
      assert.equal(codeOf(failure), 'ERR_STORE_UNAVAILABLE');
      assert.equal((failure as { details?: { url?: unknown } }).details?.url, own.connectionString);
    } finally {
      await store.close();
      await own.close();
    }
  });
});

/** Delegates to a store, running `beforeAppend` once before the first append to `stream`. */
class InterceptingStore extends ForwardingEventStore {
  #hook: { readonly stream: string; readonly run: () => Promise<void> } | null = null;
  /** Version conflicts the inner store answered, by stream. */
  readonly conflicts = new Map<string, number>();

  beforeNextAppendTo(stream: string, run: () => Promise<void>): void {
    this.#hook = { stream, run };
  }

  override async append(
    stream: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    const hook = this.#hook;
    if (hook !== null && hook.stream === stream) {
      this.#hook = null;
      await hook.run();
    }
    try {
      return await this.inner.append(stream, events, expected);
    } catch (error) {
      if (codeOf(error) === 'ERR_VERSION_CONFLICT')
        this.conflicts.set(stream, (this.conflicts.get(stream) ?? 0) + 1);
      throw error;
    }
  }
}

describe('esdb faults: a version conflict during an admin operation', () => {
  let server: EsdbTestServer;

  before(async () => {
    server = await startEsdbTestServer();
  });
  after(async () => {
    await server.close();
  });

  it('is re-decided, not lost: rotations racing from two ledgers all land, one key stays ACTIVE', async () => {
    const provider = new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() });
    const storeA = new InterceptingStore(EsdbEventStore.open(server.connectionString));
    const storeB = EsdbEventStore.open(server.connectionString);
    const a = await Ledger.open({ store: storeA, provider, actor: 'a' });
    const b = await Ledger.open({ store: storeB, provider, actor: 'b' });
    try {
      await a.initialise();
      await a.admin.enableKeyManagement(CUST, 'orders');
      await b.waitForPosition(a.position);
      const stream = a.streamNames.scope(keyScope(CUST, 'orders'));

      // A decides on the scope as it is; B's rotation lands before A's append: A loses the race.
      storeA.beforeNextAppendTo(stream, async () => {
        await b.admin.rotateManagedKey(CUST, 'orders', { reason: 'b wins' });
      });
      const rotatedByA = await a.admin.rotateManagedKey(CUST, 'orders', { reason: 'a re-decides' });
      assert.equal(storeA.conflicts.get(stream), 1, 'A lost exactly one race on the scope');
      assert.equal(rotatedByA?.key.state, 'ACTIVE');

      // Then both race freely.
      await Promise.all([
        ...[1, 2, 3].map(() => a.admin.rotateManagedKey(CUST, 'orders')),
        ...[1, 2, 3].map(() => b.admin.rotateManagedKey(CUST, 'orders')),
      ]);

      const events = await storeB.readStream(stream);
      assert.deepEqual(
        events.map((recorded) => recorded.revision),
        events.map((_, i) => BigInt(i)),
        'contiguous revisions',
      );
      assert.equal(events.filter((recorded) => recorded.type === 'ManagedKeyRotated').length, 8);
      await a.waitForPosition(b.position);
      await b.waitForPosition(a.position);
      for (const ledger of [a, b]) {
        const keys = await ledger.admin.getManagedKeys(CUST, 'orders');
        assert.equal(keys.length, 9);
        assert.equal(keys.filter((key) => key.state === 'ACTIVE').length, 1);
      }
      const reasons = (await a.history(CUST, 'orders')).map((entry) => entry.reason);
      assert.ok(reasons.includes('b wins') && reasons.includes('a re-decides'));
    } finally {
      await a.close();
      await b.close();
      await storeA.close();
      await storeB.close();
    }
  });
});

describe('esdb faults: a server that is not there', () => {
  it('fails the first call with ERR_STORE_UNAVAILABLE naming the URL without its credentials', async () => {
    const port = await closedPort();
    const url = `esdb://admin:s3cret-pw@127.0.0.1:${port}?tls=false`;
    const redacted = `esdb://***@127.0.0.1:${port}?tls=false`;
    const store = EsdbEventStore.open(url, { unavailableTimeoutMs: 300 });
    try {
      const provider = new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() });
      await assert.rejects(Ledger.open({ store, provider }), (error: unknown) => {
        const { code, message, details } = error as { code?: unknown; message: string; details?: unknown };
        assert.equal(code, 'ERR_STORE_UNAVAILABLE');
        assert.equal((details as { url?: unknown }).url, redacted);
        assert.ok(message.includes(redacted), message);
        assert.ok(!message.includes('s3cret') && !JSON.stringify(details).includes('s3cret'));
        return true;
      });
      await assert.rejects(store.append('anything', [event(0)], 'any'), (error: unknown) => {
        assert.equal(codeOf(error), 'ERR_STORE_UNAVAILABLE');
        return true;
      });
    } finally {
      await store.close();
    }
  });

  it('fails the same way through a store URL, with the default retry budget', async () => {
    const port = await closedPort();
    const store = openEventStore(`esdb://127.0.0.1:${port}?tls=false`);
    try {
      await assert.rejects(store.headPosition(), (error: unknown) => {
        assert.equal(codeOf(error), 'ERR_STORE_UNAVAILABLE');
        assert.equal(
          (error as { details?: { url?: unknown } }).details?.url,
          `esdb://127.0.0.1:${port}?tls=false`,
        );
        return true;
      });
    } finally {
      await store.close();
    }
  });
});
