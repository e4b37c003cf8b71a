import type {
  AllStreamSubscription,
  Position,
  ResolvedEvent,
  StreamSubscription,
} from '@eventstore/db-client';

/**
 * Records what a client subscription emits, in order, so tests can assert on the sequence
 * (confirmation, catch-up events, caughtUp, live events, checkpoints, errors) and wait for a state
 * without sleeping.
 */

export type Recorded =
  | { readonly kind: 'confirmation' }
  | { readonly kind: 'caughtUp' }
  | {
      readonly kind: 'event';
      readonly streamId: string;
      readonly revision: bigint;
      readonly position?: bigint;
    }
  | { readonly kind: 'checkpoint'; readonly position: bigint }
  | { readonly kind: 'error'; readonly error: unknown };

export class SubscriptionRecorder {
  readonly entries: Recorded[] = [];
  readonly #waiters: { predicate: (entries: readonly Recorded[]) => boolean; resolve: () => void }[] = [];

  /** The filter's checkpointReached callback; pass it before the subscription starts. */
  readonly checkpointReached = (_subscription: unknown, position: Position): void => {
    this.#add({ kind: 'checkpoint', position: position.commit });
  };

  attach(subscription: StreamSubscription | AllStreamSubscription): this {
    subscription.on('confirmation', () => this.#add({ kind: 'confirmation' }));
    subscription.on('caughtUp', () => this.#add({ kind: 'caughtUp' }));
    subscription.on('error', (error: unknown) => this.#add({ kind: 'error', error }));
    subscription.on('data', (resolved: ResolvedEvent) => {
      const event = resolved.event;
      if (event === undefined) return;
      this.#add({
        kind: 'event',
        streamId: event.streamId,
        revision: event.revision,
        position: event.position?.commit,
      });
    });
    return this;
  }

  events(streamId?: string): Extract<Recorded, { kind: 'event' }>[] {
    return this.entries.filter(
      (entry): entry is Extract<Recorded, { kind: 'event' }> =>
        entry.kind === 'event' && (streamId === undefined || entry.streamId === streamId),
    );
  }

  kinds(): string[] {
    return this.entries.map((entry) => entry.kind);
  }

  /** Resolves once the entries satisfy `predicate` (checked after every new entry). */
  waitFor(predicate: (entries: readonly Recorded[]) => boolean): Promise<void> {
    if (predicate(this.entries)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }

  waitForKind(kind: Recorded['kind'], count = 1): Promise<void> {
    return this.waitFor((entries) => entries.filter((entry) => entry.kind === kind).length >= count);
  }

  #add(entry: Recorded): void {
    this.entries.push(entry);
    for (const waiter of [...this.#waiters]) {
      if (!waiter.predicate(this.entries)) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
}
