import { Observable, Subject, type Subscription } from 'rxjs';
import { eventScope } from '../domain/eventScope.js';
import type { LedgerEvent } from '../domain/events.js';
import type { ScopeKey } from '../domain/identities.js';
import type { Ledger } from '../ledger/ledger.js';
import { eventOut } from '../operations/queryOperations.js';

/** One event as every SSE stream sends it: framed once, with what the streams filter on. */
export interface FeedEvent {
  readonly position: bigint;
  readonly type: string;
  /** The custodian the event is about, if any (grants filter on it). */
  readonly custodian: string | null;
  /** The scope the event is about, if any (`scope` filters on it). */
  readonly scopeKey: ScopeKey | null;
  /** `id:`, `event:` and `data:` lines and the blank line that ends them. */
  readonly frame: string;
}

export function feedEventOf(event: LedgerEvent): FeedEvent {
  const { custodian, scopeKey } = eventScope(event);
  return {
    position: event.position,
    type: event.type,
    custodian,
    scopeKey,
    frame: `id: ${event.position}\nevent: ${event.type}\ndata: ${JSON.stringify(eventOut(event))}\n\n`,
  };
}

/**
 * The server's one live subscription to the ledger's events, shared by every SSE stream. Each stream
 * reading the store itself would mean a store read, a parse and a serialisation per event per
 * client — 100 clients, 100 reads of the same event. The feed reads, parses and frames each event
 * once; a stream only filters.
 *
 * A stream resuming from an earlier position catches up on a private subscription while the feed's
 * events are held for it; once its private subscription reaches the first held event it switches to
 * the feed, dropping what it has already sent: no gap, no duplicate. The feed runs while any stream
 * uses it.
 */
export class EventFeed {
  readonly #ledger: Ledger;
  #subject: Subject<FeedEvent> | null = null;
  #source: Subscription | null = null;
  #users = 0;
  /** The position of the last event the feed passed on (or where it started). */
  #last = 0n;

  constructor(ledger: Ledger) {
    this.#ledger = ledger;
  }

  /** Every event after `from` (`'now'`: after what the feed has passed on), then live ones. */
  events(from: 'now' | 'start' | bigint): Observable<FeedEvent> {
    return new Observable<FeedEvent>((subscriber) => {
      const subject = this.#acquire();
      const start = from === 'now' ? this.#last : from === 'start' ? 0n : from;
      let cursor = start;
      const deliver = (event: FeedEvent) => {
        if (event.position <= cursor) return;
        cursor = event.position;
        subscriber.next(event);
      };
      let held: FeedEvent[] | null = start >= this.#last ? null : [];
      const live = subject.subscribe({
        next: (event) => (held === null ? deliver(event) : held.push(event)),
        error: (error: unknown) => subscriber.error(error),
      });
      let catchUp: Subscription | null = null;
      if (held !== null) {
        let caughtUp = false;
        catchUp = this.#ledger.events$({ from: start }).subscribe({
          next: (event) => {
            if (caughtUp) return;
            deliver(feedEventOf(event));
            const first = held?.[0];
            if (first !== undefined && cursor >= first.position) {
              caughtUp = true;
              const pending = held ?? [];
              held = null;
              for (const e of pending) deliver(e);
              // Unsubscribed outside its own `next`, once this call has returned.
              queueMicrotask(() => catchUp?.unsubscribe());
            }
          },
          error: (error: unknown) => subscriber.error(error),
        });
        if (caughtUp) catchUp.unsubscribe();
      }
      return () => {
        live.unsubscribe();
        catchUp?.unsubscribe();
        this.#release();
      };
    });
  }

  #acquire(): Subject<FeedEvent> {
    this.#users++;
    if (this.#subject !== null) return this.#subject;
    const subject = new Subject<FeedEvent>();
    this.#subject = subject;
    this.#last = this.#ledger.position;
    this.#source = this.#ledger.events$({ from: this.#last }).subscribe({
      next: (event) => {
        this.#last = event.position;
        subject.next(feedEventOf(event));
      },
      error: (error: unknown) => {
        // Every stream ends (its client resumes with Last-Event-ID); the next one starts a new feed.
        if (this.#subject === subject) this.#stop();
        subject.error(error);
      },
    });
    return subject;
  }

  #release(): void {
    this.#users--;
    if (this.#users === 0) this.#stop();
  }

  #stop(): void {
    this.#source?.unsubscribe();
    this.#source = null;
    this.#subject = null;
  }
}
