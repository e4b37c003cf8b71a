import { createRequire } from 'node:module';
import {
  MessageChannel,
  receiveMessageOnPort,
  Worker,
  type MessagePort as WorkerPort,
} from 'node:worker_threads';
import pkcs11js from 'pkcs11js';

/**
 * Runs a PKCS#11 module's calls on a worker thread so that each has a deadline. The SystemKeyHandle
 * port is synchronous (wrap, unwrap and mac return values), and so is every pkcs11js call: run in
 * this thread, a module that hangs would hang the process. Here the caller posts the call and waits
 * on a shared flag with `Atomics.wait(…, timeout)`; the reply is read with `receiveMessageOnPort`, so
 * the call stays synchronous for the caller. A call past its deadline throws `Pkcs11DeadlineError`
 * and the worker is abandoned; the next call starts another (the module is process-wide, so that
 * one's C_Initialize finding it initialised is fine).
 */
export class Pkcs11DeadlineError extends Error {
  constructor(readonly method: string) {
    super(`${method} did not return before its deadline`);
  }
}

// Plain CommonJS, evaluated in the worker: no TypeScript loader needed there.
const WORKER_CODE = `
const { workerData } = require('node:worker_threads');
const pkcs11js = require(workerData.binding);
const { port, flag } = workerData;
const api = new pkcs11js.PKCS11();
const toBuffers = (v) =>
  v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  : Array.isArray(v) ? v.map(toBuffers)
  : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toBuffers(x)]))
  : v;
port.on('message', ({ method, args }) => {
  let reply;
  try {
    reply = { value: api[method](...toBuffers(args)) };
  } catch (e) {
    reply = { error: { message: String(e && e.message), code: e && e.code, method: e && e.method, pkcs11: e instanceof pkcs11js.Pkcs11Error } };
  }
  port.postMessage(reply);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
`;

const PKCS11JS = createRequire(import.meta.url).resolve('pkcs11js');

function toBuffers(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(toBuffers);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toBuffers(v)]));
  }
  return value;
}

interface Thread {
  readonly worker: Worker;
  readonly port: WorkerPort;
  readonly flag: Int32Array;
}

/**
 * A pkcs11js PKCS11 look-alike whose every method runs on the worker with `timeoutMs`. Errors come
 * back as pkcs11js.Pkcs11Error (same `code`), so callers map them as they would in-thread ones.
 * `binding`: the module that exports PKCS11 and Pkcs11Error (pkcs11js; tests pass one that hangs).
 */
export function workerPkcs11(timeoutMs: number, binding: string = PKCS11JS): pkcs11js.PKCS11 {
  let thread: Thread | null = null;
  const start = (): Thread => {
    const { port1, port2 } = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: { binding, port: port2, flag },
      transferList: [port2],
    });
    // The worker must not keep the process alive, nor crash it when abandoned.
    worker.unref();
    worker.on('error', () => {});
    return { worker, port: port1, flag };
  };
  /** `load` and `C_Initialize` as made: a worker that replaces an abandoned one repeats them. */
  const setup: { readonly method: string; readonly args: unknown[] }[] = [];
  const call = (method: string, args: unknown[]): unknown => {
    if (thread === null) {
      thread = start();
      for (const step of setup) {
        try {
          send(step.method, step.args);
        } catch (error) {
          // The module is process-wide: the abandoned worker's C_Initialize still holds.
          if (
            !(
              error instanceof pkcs11js.Pkcs11Error &&
              error.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED
            )
          )
            throw error;
        }
      }
    }
    const value = send(method, args);
    if (method === 'load' || method === 'C_Initialize') setup.push({ method, args });
    return value;
  };
  const send = (method: string, args: unknown[]): unknown => {
    thread ??= start();
    const { port, flag } = thread;
    Atomics.store(flag, 0, 0);
    port.postMessage({ method, args });
    if (Atomics.wait(flag, 0, 0, timeoutMs) === 'timed-out') {
      const stuck = thread;
      thread = null;
      void stuck.worker.terminate();
      throw new Pkcs11DeadlineError(method);
    }
    const message = receiveMessageOnPort(port)?.message as
      | { value: unknown }
      | { error: { message: string; code?: number; method?: string; pkcs11: boolean } }
      | undefined;
    if (message === undefined) throw new Error(`${method}: the PKCS#11 worker sent no reply`);
    if ('error' in message) {
      const e = message.error;
      if (e.pkcs11) throw new pkcs11js.Pkcs11Error(e.message, e.code ?? 0, e.method ?? method);
      throw new Error(e.message);
    }
    return toBuffers(message.value);
  };
  return new Proxy({} as pkcs11js.PKCS11, {
    get: (_target, property) => {
      // Not a thenable: only Cryptoki's names are calls.
      if (typeof property !== 'string' || property === 'then') return undefined;
      if (property === 'close') {
        return () => {
          if (thread !== null) void thread.worker.terminate();
          thread = null;
        };
      }
      return (...args: unknown[]) => call(property, args);
    },
  });
}
