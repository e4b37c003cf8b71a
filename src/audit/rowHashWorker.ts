import { Worker } from 'node:worker_threads';
import { KeyledgerError } from '../domain/errors.js';
import { addRowHash } from './rowHash.js';

/**
 * Hashes the rows of a row snapshot (src/audit/snapshotRows.ts) on a worker thread while the
 * caller decodes them: at a million rows the keyed SHA-256 per row is seconds the opening thread
 * no longer spends (issue 18: Ledger.open at 1M scopes). The worker computes exactly RowDigest's
 * sum (the same hash input, the same lanes) and answers it at the end; the caller compares it with
 * the sealed header as before. Pages travel as one string and the lengths of its keys and values
 * (one copy, not one per row). At most MAX_IN_FLIGHT pages wait in the worker, so a slow worker
 * holds the reader back instead of queueing the snapshot in memory.
 *
 * The worker's code is plain CommonJS evaluated in the thread (no loader, no file to find, bundle
 * or not); its row hash is addRowHash's own source text (rowHash.ts), so there is one definition.
 * Its only input besides the rows is the row secret, which stays in this process.
 */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const secretHex = workerData.secretHex;
const addRowHash = ${addRowHash.toString()};
const lanes = new Uint32Array(8);
let count = 0;
parentPort.on('message', (message) => {
  if (message === null) {
    parentPort.postMessage({ lanes, count });
    return;
  }
  const { text, lengths } = message;
  let at = 0;
  for (let i = 0; i < lengths.length; i += 2) {
    const key = text.slice(at, at + lengths[i]);
    at += lengths[i];
    const value = text.slice(at, at + lengths[i + 1]);
    at += lengths[i + 1];
    addRowHash(crypto, secretHex, key, value, lanes, 1);
    count++;
  }
  parentPort.postMessage(0);
});
`;

const MAX_IN_FLIGHT = 4;

/** The sum the worker computed: RowDigest's lanes and count. */
export interface RowSum {
  readonly lanes: Uint32Array;
  readonly count: number;
}

export class RowHashWorker {
  readonly #worker: Worker;
  #inFlight = 0;
  /** Resolved when a page is acknowledged (the reader waits on it when MAX_IN_FLIGHT are out). */
  #acked: (() => void) | null = null;
  #finished: ((sum: RowSum) => void) | null = null;
  #failure: Error | null = null;
  #failed: ((error: Error) => void) | null = null;

  constructor(secret: Buffer) {
    // No inherited Node flags: the source is CommonJS whatever the host was started with (an
    // --input-type=module program, a loader).
    this.#worker = new Worker(SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { secretHex: secret.toString('hex') },
    });
    this.#worker.on('message', (message: number | RowSum) => {
      if (typeof message === 'number') {
        this.#inFlight--;
        const acked = this.#acked;
        this.#acked = null;
        acked?.();
      } else this.#finished?.(message);
    });
    const fail = (error: unknown): void => {
      this.#failure ??= new KeyledgerError(
        'ERR_INTERNAL',
        'the row hash worker stopped',
        {},
        { cause: error },
      );
      const acked = this.#acked;
      this.#acked = null;
      acked?.();
      this.#failed?.(this.#failure);
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(code));
  }

  /** Hands a page to the worker (waits while MAX_IN_FLIGHT pages are not hashed yet). */
  async add(page: readonly { readonly key: string; readonly value: string }[]): Promise<void> {
    while (this.#inFlight >= MAX_IN_FLIGHT && this.#failure === null) {
      await new Promise<void>((resolve) => {
        this.#acked = resolve;
      });
    }
    if (this.#failure !== null) throw this.#failure;
    const lengths = new Int32Array(page.length * 2);
    let text = '';
    for (let i = 0; i < page.length; i++) {
      const { key, value } = page[i] as { key: string; value: string };
      lengths[2 * i] = key.length;
      lengths[2 * i + 1] = value.length;
      text += key;
      text += value;
    }
    this.#inFlight++;
    this.#worker.postMessage({ text, lengths }, [lengths.buffer]);
  }

  /** The sum of every row handed over; the worker is stopped. */
  async finish(): Promise<RowSum> {
    try {
      if (this.#failure !== null) throw this.#failure;
      return await new Promise<RowSum>((resolve, reject) => {
        this.#finished = resolve;
        this.#failed = reject;
        this.#worker.postMessage(null);
      });
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    this.#worker.removeAllListeners('exit');
    await this.#worker.terminate();
  }
}
