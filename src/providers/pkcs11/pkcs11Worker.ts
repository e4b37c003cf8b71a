import { createRequire } from 'node:module';
import {
  MessageChannel,
  receiveMessageOnPort,
  Worker,
  type MessagePort as WorkerPort,
} from 'node:worker_threads';
import pkcs11js from 'pkcs11js';
import { SecretBytes } from '../../secrets/secretBytes.js';
import { PKCS11_WORKER_SOURCE } from './pkcs11WorkerSource.js';

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

/**
 * The calls made of a whole mechanism sequence, each one message to the worker and one answer
 * (pkcs11WorkerSource.ts). Secret bytes (the DEK in and out, the PIN) cross in shared memory that
 * both threads zero when the call is done, never in a message.
 */
export interface Pkcs11SequenceCalls {
  /** C_EncryptInit + C_Encrypt of `plain` (read by the worker from shared memory). */
  encryptSecret(
    session: Buffer,
    mechanism: pkcs11js.Mechanism,
    key: Buffer,
    plain: Uint8Array,
    outBytes: number,
  ): Buffer;
  /** C_DecryptInit + C_Decrypt; the plaintext comes back through shared memory into a SecretBytes. */
  decryptSecret(
    session: Buffer,
    mechanism: pkcs11js.Mechanism,
    key: Buffer,
    data: Buffer,
    outBytes: number,
  ): SecretBytes;
  /** C_SignInit + C_Sign. */
  sign(session: Buffer, mechanism: pkcs11js.Mechanism, key: Buffer, data: Buffer, outBytes: number): Buffer;
  /** C_Login with the PIN's bytes (read by the worker from shared memory). */
  login(session: Buffer, userType: number, pin: Uint8Array): void;
  /** For tests: the shared memory secrets cross in. Between calls it must be all zero. */
  sharedSecrets(): Uint8Array;
}

export type WorkerPkcs11 = pkcs11js.PKCS11 & Pkcs11SequenceCalls;

/** Bound on a worker thread's start (Node's bootstrap and loading the binding). */
const WORKER_START_MS = 30_000;

/** Enough for a DEK and its GCM tag; a longer PIN gets a larger buffer. */
const SECRET_BYTES = 64;

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

interface Request {
  readonly method?: string;
  readonly op?: string;
  readonly args: unknown[];
}

type Reply =
  | { value: unknown }
  | { error: { message: string; code?: number; method?: string; pkcs11: boolean } };

/**
 * A pkcs11js PKCS11 look-alike whose every method runs on the worker with `timeoutMs`, plus the
 * one-message sequences of Pkcs11SequenceCalls. Errors come back as pkcs11js.Pkcs11Error (same
 * `code`, and `method` the Cryptoki function that failed), so callers map them as in-thread ones.
 * `binding`: the module that exports PKCS11 and Pkcs11Error (pkcs11js; tests pass one that hangs
 * or injects faults inside the worker).
 */
export function workerPkcs11(timeoutMs: number, binding: string = PKCS11JS): WorkerPkcs11 {
  let thread: Thread | null = null;
  let secret = new Uint8Array(new SharedArrayBuffer(SECRET_BYTES));
  /** The worker has not seen `secret` yet (it was grown): the next message carries it. */
  let secretChanged = false;
  const start = (): Thread => {
    const { port1, port2 } = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(PKCS11_WORKER_SOURCE, {
      eval: true,
      workerData: { binding, port: port2, flag, secret },
      transferList: [port2],
    });
    secretChanged = false;
    // The worker must not keep the process alive, nor crash it when abandoned.
    worker.unref();
    worker.on('error', () => {});
    // Booting a thread is not a Cryptoki call: on a loaded machine it can take longer than a short
    // callTimeoutMs, so it has its own bound and the first call's deadline starts after it.
    if (Atomics.wait(flag, 0, 0, Math.max(timeoutMs, WORKER_START_MS)) === 'timed-out') {
      void worker.terminate();
      throw new Pkcs11DeadlineError('worker start');
    }
    return { worker, port: port1, flag };
  };
  /** `load` and `C_Initialize` as made: a worker that replaces an abandoned one repeats them. */
  const setup: Request[] = [];
  const ready = (): Thread => {
    if (thread !== null) return thread;
    thread = start();
    for (const step of setup) {
      try {
        send(step);
      } catch (error) {
        // The module is process-wide: the abandoned worker's C_Initialize still holds.
        if (
          !(error instanceof pkcs11js.Pkcs11Error && error.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED)
        )
          throw error;
      }
    }
    return thread;
  };
  const send = (request: Request): unknown => {
    const current = thread ?? ready();
    const { port, flag } = current;
    const name = request.method ?? request.op ?? '?';
    Atomics.store(flag, 0, 0);
    port.postMessage(secretChanged ? { ...request, secret } : request);
    secretChanged = false;
    if (Atomics.wait(flag, 0, 0, timeoutMs) === 'timed-out') {
      thread = null;
      void current.worker.terminate();
      throw new Pkcs11DeadlineError(name);
    }
    const message = receiveMessageOnPort(port)?.message as Reply | undefined;
    if (message === undefined) throw new Error(`${name}: the PKCS#11 worker sent no reply`);
    if ('error' in message) {
      const e = message.error;
      if (e.pkcs11) throw new pkcs11js.Pkcs11Error(e.message, e.code ?? 0, e.method || name);
      throw new Error(e.message);
    }
    return toBuffers(message.value);
  };
  const call = (request: Request): unknown => {
    ready();
    const value = send(request);
    if (request.method === 'load' || request.method === 'C_Initialize') setup.push(request);
    return value;
  };
  /** Puts `bytes` in shared memory, runs `request`, and zeroes the shared bytes whatever happens. */
  const withSecret = <T>(bytes: Uint8Array | number, run: () => T): T => {
    const length = typeof bytes === 'number' ? bytes : bytes.length;
    if (length > secret.length) {
      secret = new Uint8Array(new SharedArrayBuffer(length));
      secretChanged = true;
    }
    ready();
    try {
      if (typeof bytes !== 'number') secret.set(bytes);
      return run();
    } finally {
      secret.fill(0);
    }
  };
  const sequences: Pkcs11SequenceCalls = {
    encryptSecret: (session, mechanism, key, plain, outBytes) =>
      withSecret(
        plain,
        () =>
          send({ op: 'encryptSecret', args: [session, mechanism, key, plain.length, outBytes] }) as Buffer,
      ),
    decryptSecret: (session, mechanism, key, data, outBytes) =>
      withSecret(outBytes, () => {
        const length = send({ op: 'decryptSecret', args: [session, mechanism, key, data, outBytes] });
        return SecretBytes.copyOf(secret.subarray(0, length as number));
      }),
    sign: (session, mechanism, key, data, outBytes) =>
      send({ op: 'sign', args: [session, mechanism, key, data, outBytes] }) as Buffer,
    login: (session, userType, pin) =>
      withSecret(pin, () => {
        send({ op: 'login', args: [session, userType, pin.length] });
      }),
    sharedSecrets: () => secret,
  };
  return new Proxy({} as WorkerPkcs11, {
    get: (_target, property) => {
      // Not a thenable: only Cryptoki's names and the sequences are calls.
      if (typeof property !== 'string' || property === 'then') return undefined;
      if (property === 'close') {
        return () => {
          if (thread !== null) void thread.worker.terminate();
          thread = null;
        };
      }
      if (Object.hasOwn(sequences, property)) return sequences[property as keyof Pkcs11SequenceCalls];
      return (...args: unknown[]) => call({ method: property, args });
    },
  });
}
