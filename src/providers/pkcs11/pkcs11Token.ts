import pkcs11js from 'pkcs11js';
import { KeyledgerError } from '../../domain/errors.js';
import { type Pkcs11Config, readPin } from './pkcs11Config.js';
import { type Pkcs11Api, returnValueOf, SESSION_LOST } from './pkcs11Module.js';
import { Pkcs11DeadlineError } from './pkcs11Worker.js';

/** Sessions kept open for reuse; more are opened under load and closed when returned past this. */
const POOL_SIZE = 4;

/**
 * One token of a loaded module: its slot found by label, one login for the process, and a small
 * pool of logged-in sessions. Every Cryptoki call goes through `use`, which lends a session for the
 * length of one synchronous step (so concurrent async callers never share one mid-operation) and
 * turns Cryptoki errors into KeyledgerErrors. After a device or session failure every session is
 * dropped and the next call finds the token, opens sessions and logs in again.
 */
export class Pkcs11Token {
  readonly #api: Pkcs11Api;
  readonly #config: Pkcs11Config;
  #slot: Buffer | null = null;
  #loggedIn = false;
  #free: Buffer[] = [];
  /** Object handles by label; dropped with the sessions, since a token may renumber them. */
  readonly #objects = new Map<string, Buffer>();

  constructor(api: Pkcs11Api, config: Pkcs11Config) {
    this.#api = api;
    this.#config = config;
  }

  get tokenLabel(): string {
    return this.#config.tokenLabel;
  }

  /** Runs `step` on a logged-in session; a Cryptoki failure is mapped by `mapError` or generically. */
  use<T>(
    operation: string,
    step: (api: Pkcs11Api, session: Buffer) => T,
    mapError?: (rv: number, error: unknown) => KeyledgerError | null,
  ): T {
    const session = this.#acquire();
    let broken = false;
    try {
      return step(this.#api, session);
    } catch (error) {
      if (error instanceof Pkcs11DeadlineError) {
        broken = true;
        throw this.#device(operation, 'deadline', error);
      }
      const rv = returnValueOf(error);
      if (rv === null) throw error;
      if (SESSION_LOST.has(rv.rv)) {
        broken = true;
        throw this.#device(operation, rv.name, error);
      }
      throw mapError?.(rv.rv, error) ?? this.#device(operation, rv.name, error);
    } finally {
      if (broken) {
        this.#close(session);
        this.reset();
      } else this.#release(session);
    }
  }

  /** A key object by exact label (cached), or null. */
  findKey(label: string): Buffer | null {
    const known = this.#objects.get(label);
    if (known !== undefined) return known;
    const found = this.use('C_FindObjects', (api, session) => {
      api.C_FindObjectsInit(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_TOKEN, value: true },
      ]);
      try {
        return api.C_FindObjects(session, 2);
      } finally {
        api.C_FindObjectsFinal(session);
      }
    });
    const first = found[0];
    if (first === undefined) return null;
    if (found.length > 1) {
      // Two objects under one label: which one wraps is ambiguous, so neither is used.
      throw new KeyledgerError(
        'ERR_PKCS11_KEY_NOT_PERMITTED',
        `token ${this.tokenLabel} holds more than one key labelled ${label}`,
        { tokenLabel: this.tokenLabel, label, attribute: 'CKA_LABEL' },
      );
    }
    this.#objects.set(label, first);
    return first;
  }

  /** The labels of every secret key object in the token that starts with `prefix`. */
  labelsStartingWith(prefix: string): string[] {
    return this.use('C_FindObjects', (api, session) => {
      api.C_FindObjectsInit(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_TOKEN, value: true },
      ]);
      const handles: Buffer[] = [];
      try {
        for (
          let batch = api.C_FindObjects(session, 64);
          batch.length > 0;
          batch = api.C_FindObjects(session, 64)
        ) {
          handles.push(...batch);
        }
      } finally {
        api.C_FindObjectsFinal(session);
      }
      return handles
        .map((h) => api.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_LABEL }])[0]?.value)
        .filter((v): v is Buffer => Buffer.isBuffer(v))
        .map((v) => v.toString('utf8'))
        .filter((label) => label.startsWith(prefix));
    });
  }

  /** Drops every session (and with them the login and the object handles). */
  reset(): void {
    for (const session of this.#free) this.#close(session);
    this.#free = [];
    this.#objects.clear();
    this.#loggedIn = false;
    this.#slot = null;
  }

  #acquire(): Buffer {
    const free = this.#free.pop();
    if (free !== undefined) {
      return free;
    }
    const session = this.#open();
    return session;
  }

  #release(session: Buffer): void {
    if (this.#free.length < POOL_SIZE) {
      this.#free.push(session);
      return;
    }
    this.#close(session);
  }

  #close(session: Buffer): void {
    try {
      this.#api.C_CloseSession(session);
    } catch {
      // Closing a session that is already gone loses nothing.
    }
  }

  #open(): Buffer {
    const slot = this.#slot ?? this.#findSlot();
    let session: Buffer;
    try {
      session = this.#api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    } catch (error) {
      this.#slot = null;
      throw this.#device('C_OpenSession', returnValueOf(error)?.name ?? 'unknown', error);
    }
    this.#slot = slot;
    if (!this.#loggedIn) {
      try {
        this.#login(session);
      } catch (error) {
        try {
          this.#api.C_CloseSession(session);
        } catch {
          // The login already failed; that is the error to report.
        }
        throw error;
      }
    }
    return session;
  }

  #login(session: Buffer): void {
    const { pin: source, tokenLabel } = this.#config;
    const pinDetails = 'env' in source ? { pinEnv: source.env } : { pinFile: source.file };
    const pin = readPin(source, tokenLabel);
    try {
      this.#api.login(session, pkcs11js.CKU_USER, pin);
    } catch (error) {
      const rv = returnValueOf(error);
      // Another provider of this process logged in first: the login is the application's.
      if (rv?.rv === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
        this.#loggedIn = true;
        return;
      }
      if (rv?.rv === pkcs11js.CKR_PIN_INCORRECT || rv?.rv === pkcs11js.CKR_PIN_LOCKED) {
        throw new KeyledgerError(
          'ERR_PKCS11_PIN',
          `token ${tokenLabel} refused the PIN`,
          { tokenLabel, ...pinDetails, reason: rv.rv === pkcs11js.CKR_PIN_LOCKED ? 'locked' : 'incorrect' },
          { cause: error },
        );
      }
      throw this.#device('C_Login', rv?.name ?? 'unknown', error);
    } finally {
      // The PIN is not kept: one login serves the process until the token is lost.
      pin.fill(0);
    }
    this.#loggedIn = true;
  }

  #findSlot(): Buffer {
    const { tokenLabel } = this.#config;
    let slots: Buffer[];
    try {
      slots = this.#api.C_GetSlotList(true);
    } catch (error) {
      throw this.#device('C_GetSlotList', returnValueOf(error)?.name ?? 'unknown', error);
    }
    for (const slot of slots) {
      let label: string;
      try {
        label = this.#api.C_GetTokenInfo(slot).label.trimEnd();
      } catch {
        continue; // A slot whose token went away while we looked is not ours.
      }
      if (label === tokenLabel) return slot;
    }
    throw new KeyledgerError('ERR_PKCS11_TOKEN_NOT_FOUND', `no PKCS#11 token labelled ${tokenLabel}`, {
      tokenLabel,
    });
  }

  #device(operation: string, rv: string, cause: unknown): KeyledgerError {
    if (cause instanceof Pkcs11DeadlineError) {
      return new KeyledgerError(
        'ERR_PKCS11_TIMEOUT',
        `token ${this.tokenLabel} did not answer ${operation} within ${this.#config.callTimeoutMs} ms; the next call starts afresh`,
        { tokenLabel: this.tokenLabel, operation, ms: this.#config.callTimeoutMs },
        { cause },
      );
    }
    return new KeyledgerError(
      'ERR_PKCS11_DEVICE',
      `token ${this.tokenLabel} failed in ${operation} (${rv}); the next call reopens its sessions`,
      { tokenLabel: this.tokenLabel, operation, rv },
      { cause },
    );
  }
}
