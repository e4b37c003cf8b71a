import { existsSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import { KeyledgerError } from '../../domain/errors.js';
import { DEFAULT_CALL_TIMEOUT_MS } from './pkcs11Config.js';
import { type Pkcs11SequenceCalls, type WorkerPkcs11, workerPkcs11 } from './pkcs11Worker.js';

/**
 * What the provider uses of a module on its worker thread (pkcs11Worker.ts): single Cryptoki calls
 * for sessions and objects, and one-message sequences for wrap, unwrap, MAC and login. Tests make
 * one with a binding that injects faults inside the worker.
 */
export type Pkcs11Api = Pkcs11SequenceCalls &
  Pick<
    pkcs11js.PKCS11,
    | 'C_GetSlotList'
    | 'C_GetTokenInfo'
    | 'C_OpenSession'
    | 'C_CloseSession'
    | 'C_FindObjectsInit'
    | 'C_FindObjects'
    | 'C_FindObjectsFinal'
    | 'C_GetAttributeValue'
    | 'C_GenerateKey'
    | 'C_DestroyObject'
  >;

/**
 * A loaded, initialised module is shared by every provider of the process: PKCS#11 allows one
 * C_Initialize per process and module, and a login is per application, not per session.
 */
interface LoadedModule {
  readonly api: WorkerPkcs11;
  users: number;
}

const loaded = new Map<string, LoadedModule>();

/**
 * The module at `path`, loaded and initialised once per process (its calls run on a worker thread,
 * each with `timeoutMs`, pkcs11Worker.ts); release it with `releasePkcs11Module`.
 */
export function loadPkcs11Module(path: string, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Pkcs11Api {
  const known = loaded.get(path);
  if (known !== undefined) {
    known.users++;
    return known.api;
  }
  const fail = (cause?: unknown): never => {
    throw new KeyledgerError(
      'ERR_PKCS11_MODULE',
      `${path} is not a loadable PKCS#11 module`,
      { module: path },
      { cause },
    );
  };
  // dlopen of a missing path says little; this names the file.
  if (!existsSync(path)) return fail();
  const api = workerPkcs11(timeoutMs);
  try {
    api.load(path);
    api.C_Initialize();
  } catch (error) {
    // An earlier worker of this process that was abandoned at a deadline initialised it already.
    if (returnValueOf(error)?.rv !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      api.close();
      return fail(error);
    }
  }
  loaded.set(path, { api, users: 1 });
  return api;
}

/** Finalizes the module when its last user lets go, so a later load reads its config afresh. */
export function releasePkcs11Module(path: string): void {
  const known = loaded.get(path);
  if (known === undefined) return;
  known.users--;
  if (known.users > 0) return;
  loaded.delete(path);
  try {
    known.api.C_Finalize();
    known.api.close();
  } catch {
    // The module is being let go: a token that is gone cannot refuse that.
  }
}

const RV_NAMES = new Map<number, string>(
  Object.entries(pkcs11js)
    .filter(([name, value]) => name.startsWith('CKR_') && typeof value === 'number')
    .map(([name, value]) => [value as number, name]),
);

/** The CKR_ name of a pkcs11js error's return value, or null when it is not a Cryptoki error. */
export function returnValueOf(error: unknown): { readonly rv: number; readonly name: string } | null {
  if (!(error instanceof pkcs11js.Pkcs11Error)) return null;
  return { rv: error.code, name: RV_NAMES.get(error.code) ?? `0x${error.code.toString(16)}` };
}

/** Return values after which the sessions (and the login) are gone: reopen on the next call. */
export const SESSION_LOST: ReadonlySet<number> = new Set([
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_TOKEN_NOT_RECOGNIZED,
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
  pkcs11js.CKR_OBJECT_HANDLE_INVALID,
  pkcs11js.CKR_KEY_HANDLE_INVALID,
]);
