/**
 * How the sqlite store sees other processes' appends: while anyone subscribes, it polls the head
 * and tells the subscriptions when it moved past the highest head this process has seen.
 */
export class HeadPoller {
  readonly #intervalMs: number;
  readonly #head: () => bigint;
  readonly #moved: () => void;
  readonly #failed: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Highest head seen by this process, to tell when another process has appended. */
  #knownHead = 0n;

  /** `head` reads the store's head; `moved` and `failed` reach the subscriptions. */
  constructor(intervalMs: number, head: () => bigint, moved: () => void, failed: (error: unknown) => void) {
    this.#intervalMs = intervalMs;
    this.#head = head;
    this.#moved = moved;
    this.#failed = failed;
  }

  /** This process appended up to `position`: not news when a poll sees it. */
  noteHead(position: bigint): void {
    if (position > this.#knownHead) this.#knownHead = position;
  }

  subscribersChanged(count: number): void {
    // Ref'd on purpose: a process whose only work is a subscription must stay alive for it.
    if (count > 0 && this.#timer === undefined && !this.#closed) {
      this.#timer = setInterval(this.#poll, this.#intervalMs);
    } else if (count === 0) {
      this.#stop();
    }
  }

  /** The store is closing: no poll runs again. */
  close(): void {
    this.#closed = true;
    this.#stop();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #poll = (): void => {
    let head: bigint;
    try {
      head = this.#head();
    } catch (error) {
      this.#failed(error);
      return;
    }
    if (head > this.#knownHead) {
      this.#knownHead = head;
      this.#moved();
    }
  };
}
