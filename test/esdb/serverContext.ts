import type { EventLog } from './eventLog.js';
import type { ServerError } from './serverErrors.js';

/** An in-flight call the node can end when it goes down (stop()). */
export interface OpenCall {
  abort(error: ServerError): void;
}

/** What every service handler shares: the log, the calls in flight, and per-method call counts. */
export class ServerContext {
  readonly log: EventLog;
  readonly #openCalls = new Set<OpenCall>();
  readonly #callCounts = new Map<string, number>();

  constructor(log: EventLog) {
    this.log = log;
  }

  countCall(method: string): void {
    this.#callCounts.set(method, this.callCount(method) + 1);
  }

  callCount(method: string): number {
    return this.#callCounts.get(method) ?? 0;
  }

  /** Registers a call until the returned function is called (the call ended on its own). */
  track(call: OpenCall): () => void {
    this.#openCalls.add(call);
    return () => this.#openCalls.delete(call);
  }

  abortAll(error: ServerError): void {
    for (const call of [...this.#openCalls]) {
      this.#openCalls.delete(call);
      call.abort(error);
    }
  }
}
