import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Observable, Subscription } from 'rxjs';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import { EventFeed, type FeedEvent } from '../../src/server/eventFeed.js';
import type { RecordedEvent, SubscribeOptions } from '../../src/store/eventStore.js';
import { ForwardingEventStore } from '../../src/store/forwardingEventStore.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { ScriptedProvider } from '../helpers/scriptedProvider.js';

const CUST = Buffer.from('tenant-1').toString('base64');

/** Counts the live subscriptions opened on the store. */
class CountingStore extends ForwardingEventStore {
  subscriptions = 0;
  override subscribe(options?: SubscribeOptions): Observable<RecordedEvent> {
    this.subscriptions++;
    return super.subscribe(options);
  }
}

const opened: Ledger[] = [];
after(async () => {
  for (const ledger of opened.splice(0)) await ledger.close();
});

async function setup() {
  const store = new CountingStore(new MemoryEventStore());
  const ledger = await Ledger.open({
    store,
    provider: new GeneratedKeyProvider({ systemKeys: new ScriptedProvider() }),
    actor: 'test',
    resolver: { dynamicLookup: false },
  });
  opened.push(ledger);
  await ledger.initialise();
  return { store, ledger };
}

/** Collects the positions a feed delivers. */
function collect(events: Observable<FeedEvent>): { positions: bigint[]; subscription: Subscription } {
  const positions: bigint[] = [];
  const subscription = events.subscribe({ next: (event) => positions.push(event.position) });
  return { positions, subscription };
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(10);
  assert.ok(check(), `timed out waiting for ${what}`);
}

describe('EventFeed: one store subscription shared by every event stream', () => {
  it('given 50 streams from now, when events are written, each gets each event once from one store read', async () => {
    const { store, ledger } = await setup();
    const feed = new EventFeed(ledger);
    const before = store.subscriptions;
    const streams = Array.from({ length: 50 }, () => collect(feed.events('now')));
    assert.equal(store.subscriptions - before, 1, 'one subscription for all the streams');
    await ledger.admin.enableKeyManagement(CUST, 'a');
    await ledger.admin.rotateManagedKey(CUST, 'a');
    const head = ledger.position;
    await waitFor(() => streams.every((s) => s.positions.at(-1) === head), 'every stream to reach the head');
    const expected = streams[0]?.positions ?? [];
    assert.ok(expected.length >= 2);
    for (const s of streams) assert.deepEqual(s.positions, expected);
    for (const s of streams) s.subscription.unsubscribe();
  });

  it('given a stream resuming from an earlier position while events are written, it gets every later event exactly once, in order', async () => {
    const { store, ledger } = await setup();
    for (let i = 0; i < 5; i++) await ledger.admin.enableKeyManagement(CUST, `ns-${i}`);
    const feed = new EventFeed(ledger);
    const live = collect(feed.events('now'));
    const from = 3n;
    const resumed = collect(feed.events(from));
    const before = store.subscriptions;
    // Writes racing the catch-up: the resumed stream switches from its own reads to the feed.
    for (let i = 0; i < 10; i++) await ledger.admin.rotateManagedKey(CUST, `ns-${i % 5}`);
    const head = ledger.position;
    await waitFor(() => resumed.positions.at(-1) === head, 'the resumed stream to reach the head');
    const all: bigint[] = [];
    for await (const recorded of store.readAll({ after: from, streamPrefix: ledger.streamNames.prefix })) {
      all.push(recorded.position);
    }
    assert.deepEqual(resumed.positions, all, 'no gap, no duplicate, in order');
    assert.ok(live.positions.length > 0);
    // Caught up: later events reach it through the feed alone (its own subscription is released).
    await sleep(20);
    const subscriptionsAfterCatchUp = store.subscriptions;
    await ledger.admin.rotateManagedKey(CUST, 'ns-0');
    await waitFor(() => resumed.positions.at(-1) === ledger.position, 'the next event');
    assert.equal(store.subscriptions, subscriptionsAfterCatchUp);
    assert.ok(store.subscriptions - before <= 1);
    live.subscription.unsubscribe();
    resumed.subscription.unsubscribe();
  });

  it('given the last stream leaves, the store subscription is released and a new stream starts a new one', async () => {
    const { store, ledger } = await setup();
    const feed = new EventFeed(ledger);
    const first = collect(feed.events('now'));
    first.subscription.unsubscribe();
    const before = store.subscriptions;
    const second = collect(feed.events('now'));
    assert.equal(store.subscriptions - before, 1);
    await ledger.admin.enableKeyManagement(CUST, 'b');
    await waitFor(() => second.positions.at(-1) === ledger.position, 'the event');
    second.subscription.unsubscribe();
  });
});
