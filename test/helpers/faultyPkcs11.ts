/**
 * A PKCS#11 module on its worker thread whose binding injects faults inside the worker, where the
 * mechanism sequences run (pkcs11WorkerSource.ts): a CommonJS binding written to `dir` wraps the
 * real pkcs11js object and, when armed, throws a Cryptoki return value from one method, once. It
 * also counts opened sessions and records whether the secret argument of C_Encrypt (the DEK) and
 * C_Decrypt (the plaintext's destination) lay in shared memory.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { type WorkerPkcs11, workerPkcs11 } from '../../src/providers/pkcs11/pkcs11Worker.js';

export type InjectedRv = 'CKR_DEVICE_REMOVED' | 'CKR_SESSION_HANDLE_INVALID' | 'CKR_DEVICE_ERROR';

export interface FaultyPkcs11 {
  readonly api: WorkerPkcs11;
  /** The next call of `method` in the worker throws `rv`. */
  arm(method: string, rv: InjectedRv): void;
  /** Whether an armed fault is still waiting for its method. */
  armed(): boolean;
  /** C_OpenSession calls made so far. */
  opened(): number;
  /** `C_Encrypt:true` etc. for each secret argument since the last call: true when shared memory. */
  secretArguments(): string[];
  /** Ends the worker; the module stays initialised for the process's other users. */
  close(): void;
}

const REAL = createRequire(import.meta.url).resolve('pkcs11js');

const BINDING = `
const real = require(${JSON.stringify(REAL)});
let armed = null;
let opened = 0;
const secretArguments = [];
class PKCS11 {
  constructor() {
    const inner = new real.PKCS11();
    const controls = {
      __arm: (method, rv) => { armed = { method, rv }; },
      __armed: () => armed !== null,
      __opened: () => opened,
      __secretArguments: () => secretArguments.splice(0),
    };
    return new Proxy(inner, {
      get(target, property) {
        if (Object.hasOwn(controls, property)) return controls[property];
        const value = target[property];
        if (typeof value !== 'function') return value;
        return (...args) => {
          if (property === 'C_OpenSession') opened++;
          if (property === 'C_Encrypt') secretArguments.push('C_Encrypt:' + (args[1].buffer instanceof SharedArrayBuffer));
          if (property === 'C_Decrypt') secretArguments.push('C_Decrypt:' + (args[2].buffer instanceof SharedArrayBuffer));
          if (armed !== null && armed.method === property) {
            const rv = armed.rv;
            armed = null;
            throw new real.Pkcs11Error(rv, real[rv], property);
          }
          return value.apply(target, args);
        };
      },
    });
  }
}
module.exports = { PKCS11, Pkcs11Error: real.Pkcs11Error };
`;

/** Loads `module` (a real PKCS#11 library) in a worker whose binding injects faults. */
export function faultyPkcs11(dir: string, module: string, timeoutMs = 10_000): FaultyPkcs11 {
  const binding = join(dir, 'faultyPkcs11.cjs');
  writeFileSync(binding, BINDING);
  const api = workerPkcs11(timeoutMs, binding);
  api.load(module);
  try {
    api.C_Initialize();
  } catch (error) {
    // Another user of this process initialised the module first.
    if ((error as { code?: number }).code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw error;
  }
  const control = api as unknown as Record<string, (...args: unknown[]) => unknown>;
  const run = (name: string, ...args: unknown[]): unknown => control[name]?.(...args);
  return {
    api,
    arm: (method, rv) => {
      run('__arm', method, rv);
    },
    armed: () => run('__armed') === true,
    opened: () => run('__opened') as number,
    secretArguments: () => run('__secretArguments') as string[],
    close: () => api.close(),
  };
}
