import { Observable, type Subscriber } from 'rxjs';
import { storeClosedError } from '../adapterSupport.js';
import type { RecordedEvent, SubscribeOptions } from '../eventStore.js';
import { AllFollower } from './allFollower.js';
import type { EsdbCalls } from './esdbCalls.js';

interface LiveSubscription {
  readonly subscriber: Subscriber<RecordedEvent>;
  readonly follower: AllFollower;
}

/**
 * The esdb adapter's subscribe: each subscriber follows `$all` (AllFollower, which resubscribes
 * after outages for `resubscribeTimeoutMs`); closing the store completes them all.
 */
export class LiveSubscriptions {
  readonly #calls: EsdbCalls;
  readonly #live = new Set<LiveSubscription>();

  constructor(calls: EsdbCalls) {
    this.#calls = calls;
  }

  subscribe(options: SubscribeOptions): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      if (this.#calls.closed) {
        subscriber.error(storeClosedError());
        return;
      }
      const follower = new AllFollower({
        client: this.#calls.client,
        url: this.#calls.url,
        after: options.after ?? 0n,
        streamPrefix: options.streamPrefix === '' ? undefined : options.streamPrefix,
        retryForMs: this.#calls.resubscribeTimeoutMs,
        handlers: {
          event: (recorded) => subscriber.next(recorded),
          failed: (error) => {
            this.#live.delete(live);
            subscriber.error(error);
          },
        },
      });
      const live: LiveSubscription = { subscriber, follower };
      this.#live.add(live);
      follower.start();
      return () => {
        this.#live.delete(live);
        follower.stop();
      };
    });
  }

  /** The store is closing: every subscription stops and completes. */
  closeAll(): void {
    for (const live of [...this.#live]) {
      live.follower.stop();
      live.subscriber.complete();
    }
    this.#live.clear();
  }
}
