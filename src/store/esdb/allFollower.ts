import type {
  AllStreamResolvedEvent,
  AllStreamSubscription,
  EventStoreDBClient,
  Position,
} from '@eventstore/db-client';
import type { KeyledgerError } from '../../domain/errors.js';
import type { RecordedEvent } from '../eventStore.js';
import { esdbClient } from './esdbClient.js';
import { isTransient, toStoreError, unavailableError } from './esdbErrors.js';
import { isBookkeepingStream, positionOf, readPositionAfter, toRecordedEvent } from './esdbRecords.js';

/** First pause before subscribing again; doubles per failed attempt up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1000;

/** Without a prefix, every stream except EventStoreDB's own (`$…`); snapshot streams are left out here. */
const NON_SYSTEM_STREAMS = '^[^$]';

export interface FollowerHandlers {
  /** A matching event, in position order, each once across reconnections. */
  event(recorded: RecordedEvent): void;
  /** An event the server sent that the port does not deliver (a snapshot stream's). */
  skipped?(position: bigint): void;
  /** The server sent everything there was when it said so (EventStoreDB 23.10 and later). */
  caughtUp?(): void;
  /** The server scanned the log up to `position` (filtered subscriptions report this periodically). */
  checkpoint?(position: bigint): void;
  /** Given up: a refusal, an unreadable event, or a server unreachable for longer than allowed. */
  failed(error: KeyledgerError): void;
}

export interface FollowerOptions {
  readonly client: EventStoreDBClient;
  /** The server's redacted URL, for messages. */
  readonly url: string;
  /** Deliver only events strictly after this position. */
  readonly after: bigint;
  readonly streamPrefix: string | undefined;
  /** How long to keep subscribing again while the server cannot be reached, before failing. */
  readonly retryForMs: number;
  readonly handlers: FollowerHandlers;
}

/**
 * A catch-up subscription to `$all`, filtered by stream prefix on the server, that survives the
 * server going away: when the call ends or fails with a transient error it subscribes again, with
 * backoff, from the last event it received, and drops anything at or below the last position it
 * delivered, so no event is lost and none is delivered twice. It gives up (`failed`) on a
 * non-transient error, or once the server has been unreachable for `retryForMs` without a break.
 *
 * The cursor moves on events only, never on checkpoints: the client hands out checkpoints as soon
 * as it reads them, possibly before the events before them have been emitted, so resuming from a
 * checkpoint could skip events that were still buffered when the connection dropped.
 */
export class AllFollower {
  readonly #options: FollowerOptions;
  #subscription: AllStreamSubscription | null = null;
  /** Where the next subscription starts (exclusive): the last event received, of any stream. */
  #cursor: Position | 'start';
  #lastDelivered: bigint;
  #stopped = false;
  #paused = false;
  #downSince: number | null = null;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: FollowerOptions) {
    this.#options = options;
    this.#cursor = readPositionAfter(options.after);
    this.#lastDelivered = options.after;
  }

  start(): void {
    this.#connect();
  }

  /** Ends for good: cancels the call and any pending resubscription; nothing is delivered after. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#release();
  }

  /** Stops reading from the server (gRPC flow control) until resume(). */
  pause(): void {
    this.#paused = true;
    this.#subscription?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#subscription?.resume();
  }

  /** Events the client has received but not yet emitted. */
  get buffered(): number {
    return this.#subscription?.readableLength ?? 0;
  }

  #connect(): void {
    if (this.#stopped) return;
    const { client, streamPrefix, handlers } = this.#options;
    const checkpointReached = (from: AllStreamSubscription, position: Position): void => {
      if (from !== this.#subscription || this.#stopped) return;
      this.#healthy();
      handlers.checkpoint?.(position.commit);
    };
    const filter =
      streamPrefix === undefined
        ? esdbClient().streamNameFilter({ regex: NON_SYSTEM_STREAMS, checkpointReached })
        : esdbClient().streamNameFilter({ prefixes: [streamPrefix], checkpointReached });
    let subscription: AllStreamSubscription;
    try {
      subscription = client.subscribeToAll({ fromPosition: this.#cursor, filter });
    } catch (error) {
      this.#fail(toStoreError(error, this.#options.url, 'subscribe'));
      return;
    }
    this.#subscription = subscription;
    subscription.on('confirmation', () => {
      if (subscription === this.#subscription) this.#healthy();
    });
    subscription.on('data', (resolved: AllStreamResolvedEvent) => this.#received(subscription, resolved));
    subscription.on('caughtUp', () => {
      if (subscription !== this.#subscription || this.#stopped) return;
      this.#healthy();
      handlers.caughtUp?.();
    });
    subscription.on('error', (error: unknown) => this.#dropped(subscription, error));
    subscription.on('end', () => this.#dropped(subscription, null));
    subscription.on('close', () => this.#dropped(subscription, null));
    if (this.#paused) subscription.pause();
  }

  #received(from: AllStreamSubscription, resolved: AllStreamResolvedEvent): void {
    if (from !== this.#subscription || this.#stopped) return;
    const event = resolved.event;
    if (event === undefined) return;
    this.#healthy();
    let recorded: RecordedEvent;
    try {
      const position = positionOf(event);
      if (position.commit > this.#cursorCommit()) this.#cursor = position;
      if (position.commit <= this.#lastDelivered) return;
      if (isBookkeepingStream(event.streamId)) {
        this.#options.handlers.skipped?.(position.commit);
        return;
      }
      recorded = toRecordedEvent(event);
    } catch (error) {
      this.#fail(toStoreError(error, this.#options.url, 'subscription'));
      return;
    }
    this.#lastDelivered = recorded.position;
    this.#options.handlers.event(recorded);
  }

  #cursorCommit(): bigint {
    return this.#cursor === 'start' ? 0n : this.#cursor.commit;
  }

  #healthy(): void {
    this.#downSince = null;
    this.#attempt = 0;
  }

  /** The call is over (failed, ended by the server, or closed): subscribe again, or give up. */
  #dropped(from: AllStreamSubscription, error: unknown): void {
    if (from !== this.#subscription || this.#stopped) return;
    this.#release();
    const { url, retryForMs } = this.#options;
    if (error !== null && !isTransient(error)) {
      this.#fail(toStoreError(error, url, 'subscription'));
      return;
    }
    const now = Date.now();
    this.#downSince ??= now;
    const waited = now - this.#downSince;
    if (waited >= retryForMs) {
      this.#fail(
        unavailableError(url, 'subscription', waited, error ?? new Error('the server ended the call')),
      );
      return;
    }
    const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** this.#attempt);
    this.#attempt += 1;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
  }

  #fail(error: KeyledgerError): void {
    if (this.#stopped) return;
    this.stop();
    this.#options.handlers.failed(error);
  }

  #release(): void {
    const subscription = this.#subscription;
    this.#subscription = null;
    if (subscription === null) return;
    subscription.removeAllListeners('data');
    // Flowing again (with no listener), so a paused call can end: the client's dispose() waits for it.
    subscription.resume();
    // Cancelling an already ended call is harmless; the client reports its own cancellation to no one.
    subscription.unsubscribe().catch(() => undefined);
  }
}
