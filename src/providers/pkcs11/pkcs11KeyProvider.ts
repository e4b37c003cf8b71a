import pkcs11js from 'pkcs11js';
import type { SystemKeyHandle } from '../../crypto/systemKeyHandle.js';
import { KeyledgerError } from '../../domain/errors.js';
import type { KeyScope } from '../../domain/identities.js';
import { formatSystemKeyMetadata, parseKeyMetadata, parseSystemKeyMetadata } from '../keyMetadata.js';
import type { ManagedKeyData, ManagedKeyProvider } from '../managedKeyProvider.js';
import type { Pkcs11Config } from './pkcs11Config.js';
import { loadPkcs11Module, type Pkcs11Api, releasePkcs11Module } from './pkcs11Module.js';
import { type Pkcs11KeyLabels, pkcs11SystemKey } from './pkcs11SystemKey.js';
import { Pkcs11Token } from './pkcs11Token.js';

export interface Pkcs11ProviderOptions {
  /**
   * Loads the module (default: once per process, pkcs11Module.ts). Tests pass a wrapper of the
   * real module that injects faults.
   */
  readonly load?: (module: string) => Pkcs11Api;
}

/**
 * System keys in a PKCS#11 token (an HSM; tested on SoftHSM2). Version N of the STK is two token
 * objects, `<stkLabel>.vN` (AES-256: encrypt/decrypt for the DEK wraps) and `<stkLabel>.vN.mac`
 * (a 256-bit generic secret: sign for checkpoint and snapshot MACs); the current STK is the highest
 * version present. Both are created sensitive and non-extractable, by `createSystemKey` alone (init
 * and rotate-stk): a provider that finds none fails rather than making one. It hands out no data
 * keys; `GeneratedKeyProvider` over it makes DEKs in process and wraps them here.
 */
export class Pkcs11KeyProvider implements ManagedKeyProvider {
  readonly kind = 'pkcs11';
  readonly #config: Pkcs11Config;
  readonly #load: (module: string) => Pkcs11Api;
  #token: Pkcs11Token | null = null;

  constructor(config: Pkcs11Config, options: Pkcs11ProviderOptions = {}) {
    this.#config = config;
    this.#load = options.load ?? ((module) => loadPkcs11Module(module, config.callTimeoutMs));
  }

  async getSystemKey(): Promise<SystemKeyHandle> {
    const version = this.#latestVersion();
    if (version === 0) {
      const label = this.#labels(1).wrap;
      throw new KeyledgerError(
        'ERR_PKCS11_KEY_NOT_FOUND',
        `token ${this.#config.tokenLabel} has no system key ${label}; run keyledger init to create it`,
        { tokenLabel: this.#config.tokenLabel, label },
      );
    }
    return this.#handle(version);
  }

  /** Only this provider's own STK labels are served: ledger metadata does not pick token objects. */
  async unwrapSystemKey(metadata: string): Promise<SystemKeyHandle> {
    const label = parseSystemKeyMetadata(metadata);
    const version = this.#versionOf(label);
    if (version === null) {
      throw new KeyledgerError(
        'ERR_SYSTEM_KEY_NOT_CONFIGURED',
        `${label} is not a system key label of this ledger (${this.#config.stkLabel}.v<N>)`,
        { alias: label },
      );
    }
    return this.#handle(version);
  }

  /** The token holds no data keys. */
  async getManagedKey(scope: KeyScope): Promise<ManagedKeyData> {
    return { ...scope, state: 'FAILED', metadata: null, key: null };
  }

  async unwrapKey(metadata: string): Promise<ManagedKeyData> {
    const parsed = parseKeyMetadata(metadata);
    return { ...parsed.scope, state: 'FAILED', metadata, key: null };
  }

  /**
   * Creates the next STK version in the token (v1 in an empty one) and returns its handle. The
   * MAC object is made first and the wrap object last: the wrap object is what marks a version as
   * present, so a failure between the two leaves no half-made current STK.
   */
  async createSystemKey(): Promise<SystemKeyHandle> {
    const version = this.#latestVersion() + 1;
    const labels = this.#labels(version);
    const token = this.#open();
    // A MAC object left by an earlier failed attempt is replaced, not reused.
    const stale = token.findKey(labels.mac);
    if (stale !== null) token.use('C_DestroyObject', (api, session) => api.C_DestroyObject(session, stale));
    token.reset();
    const common = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    ];
    token.use('C_GenerateKey', (api, session) =>
      api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, [
        ...common,
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
        { type: pkcs11js.CKA_LABEL, value: labels.mac },
        { type: pkcs11js.CKA_SIGN, value: true },
        { type: pkcs11js.CKA_VERIFY, value: false },
        { type: pkcs11js.CKA_ENCRYPT, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: false },
      ]),
    );
    token.use('C_GenerateKey', (api, session) =>
      api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        ...common,
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_LABEL, value: labels.wrap },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: true },
        { type: pkcs11js.CKA_SIGN, value: false },
        { type: pkcs11js.CKA_VERIFY, value: false },
      ]),
    );
    return this.#handle(version);
  }

  /**
   * Destroys the two objects of a system key version (the wrap object first: it is what marks a
   * version as present). Only this provider's own labels; objects already gone are skipped.
   */
  async destroySystemKey(metadata: string): Promise<void> {
    const label = parseSystemKeyMetadata(metadata);
    const version = this.#versionOf(label);
    if (version === null) {
      throw new KeyledgerError(
        'ERR_SYSTEM_KEY_NOT_CONFIGURED',
        `${label} is not a system key label of this ledger (${this.#config.stkLabel}.v<N>)`,
        { alias: label },
      );
    }
    const token = this.#open();
    const labels = this.#labels(version);
    for (const objectLabel of [labels.wrap, labels.mac]) {
      const key = token.findKey(objectLabel);
      if (key !== null) token.use('C_DestroyObject', (api, session) => api.C_DestroyObject(session, key));
    }
    // The cached handles name objects that no longer exist.
    token.reset();
  }

  async close(): Promise<void> {
    if (this.#token === null) return;
    this.#token.reset();
    this.#token = null;
    releasePkcs11Module(this.#config.module);
  }

  #open(): Pkcs11Token {
    if (this.#token === null) this.#token = new Pkcs11Token(this.#load(this.#config.module), this.#config);
    return this.#token;
  }

  #labels(version: number): Pkcs11KeyLabels {
    const wrap = `${this.#config.stkLabel}.v${version}`;
    return { wrap, mac: `${wrap}.mac` };
  }

  #versionOf(label: string): number | null {
    const match = /^(.+)\.v([1-9][0-9]{0,8})$/.exec(label);
    return match !== null && match[1] === this.#config.stkLabel ? Number(match[2]) : null;
  }

  /** The versions of this provider's STK wrap objects in the token, ascending. */
  async systemKeyVersions(): Promise<number[]> {
    return this.#versions();
  }

  #versions(): number[] {
    const labels = this.#open().labelsStartingWith(`${this.#config.stkLabel}.v`);
    return labels
      .map((label) => this.#versionOf(label))
      .filter((v): v is number => v !== null)
      .sort((a, b) => a - b);
  }

  #latestVersion(): number {
    return this.#versions().at(-1) ?? 0;
  }

  /** Checks both objects exist and allow their one use, then makes the handle. */
  #handle(version: number): SystemKeyHandle {
    const token = this.#open();
    const labels = this.#labels(version);
    this.#require(
      token,
      labels.wrap,
      [pkcs11js.CKA_ENCRYPT, 'CKA_ENCRYPT'],
      [pkcs11js.CKA_DECRYPT, 'CKA_DECRYPT'],
    );
    this.#require(token, labels.mac, [pkcs11js.CKA_SIGN, 'CKA_SIGN']);
    return pkcs11SystemKey(token, formatSystemKeyMetadata(labels.wrap), labels);
  }

  #require(token: Pkcs11Token, label: string, ...uses: readonly (readonly [number, string])[]): void {
    const tokenLabel = this.#config.tokenLabel;
    const key = token.findKey(label);
    if (key === null) {
      throw new KeyledgerError(
        'ERR_PKCS11_KEY_NOT_FOUND',
        `token ${tokenLabel} has no key labelled ${label}`,
        {
          tokenLabel,
          label,
        },
      );
    }
    const values = token.use('C_GetAttributeValue', (api, session) =>
      api.C_GetAttributeValue(
        session,
        key,
        uses.map(([type]) => ({ type })),
      ),
    );
    uses.forEach(([, name], i) => {
      const value = values[i]?.value;
      if (!Buffer.isBuffer(value) || value[0] !== 1) {
        throw new KeyledgerError(
          'ERR_PKCS11_KEY_NOT_PERMITTED',
          `key ${label} in token ${tokenLabel} does not allow ${name}`,
          { tokenLabel, label, attribute: name },
        );
      }
    });
  }
}
