import { type CipherGCM, createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { DecryptionFailedError } from './decryptionFailedError.js';
import { type DerivedKey, deriveKey, zeroDerived } from './derivedKey.js';
import {
  hasPrefix,
  KEY_ID_BYTES,
  MESSAGE_HEADER_BYTES,
  MESSAGE_OVERHEAD,
  MODE_MESSAGE,
  NONCE_BYTES,
  OFFSET_COMMITMENT,
  OFFSET_KEY_ID,
  OFFSET_NONCE,
  OFFSET_SALT,
  SALT_BYTES,
  TAG_BYTES,
  writePrefix,
} from './envelopeFormat.js';
import {
  type DecryptionKeyInfo,
  type ExpectedScope,
  inExpectedScope,
  keyInfoOf,
  type ScopeCheck,
  scopeCheckOf,
} from './expectedScope.js';
import {
  type CachedKey,
  type KeySource,
  type ResolutionTarget,
  withActiveKey,
  withKeyForDecrypt,
} from './keySource.js';
import { PublicRandomPool } from './publicRandomPool.js';

export interface EnvelopeOptions {
  /**
   * Messages one derived key may encrypt before a new salt is drawn (default 2^24). Random 96-bit
   * nonces collide under one key with probability about q²/2^97: 2^-49 at this bound, far below
   * the 2^-32 that NIST's 2^32-message limit allows (docs/formats.md).
   */
  readonly messagesPerDerivedKey?: number;
}

export interface EncryptOptions {
  /** Custodian, base64. */
  readonly custodian: string;
  /** Candidate namespaces in order (see namespaceCandidates); the first with an ACTIVE key is used. */
  readonly namespaces: readonly string[];
  /** Associated data: authenticated, not stored; decrypt needs the same bytes. */
  readonly aad?: Uint8Array;
}

/**
 * `custodian` (and `namespaces`): the scope the caller expects; a ciphertext under a key of any
 * other scope fails with the same DecryptionFailedError as any other failure.
 */
export interface DecryptOptions extends ExpectedScope {
  readonly aad?: Uint8Array;
}

/** What `decryptWithInfo` answers: the plaintext and which scope and key it was under. */
export interface DecryptResult extends DecryptionKeyInfo {
  readonly plaintext: Buffer;
}

interface EncryptState {
  readonly keyId: Buffer;
  derived: DerivedKey;
  remaining: number;
}

const DEFAULT_MESSAGES_PER_DERIVED_KEY = 2 ** 24;
const MAX_TARGETS = 1024;
const DERIVED_PER_KEY = 64;
const EMPTY = Buffer.alloc(0);
/** Nonces drawn from the CSPRNG per call (341 messages' worth). */
const NONCE_POOL_BYTES = 341 * NONCE_BYTES;

/**
 * Envelope encryption with the ledger's keys: `encrypt` picks the key through the resolver's
 * namespace fallback and writes a self-describing ciphertext (docs/formats.md); `decrypt` finds
 * the key its header names (ACTIVE or INACTIVE). Every decryption failure is one
 * DecryptionFailedError; API misuse is a TypeError.
 *
 * Each message is encrypted under a key derived from the DEK with HKDF and a random salt, so no
 * key comes near AES-GCM's random-nonce limit; a derived key serves a bounded number of messages.
 * Derived keys live exactly as long as their DEK stays in L1 and are zeroed with it.
 */
export class Envelope {
  readonly #keys: KeySource;
  readonly #budget: number;
  readonly #targets = new LRUCache<string, ResolutionTarget>({ max: MAX_TARGETS });
  readonly #encrypting = new Map<CachedKey, EncryptState>();
  readonly #decrypting = new Map<CachedKey, LRUCache<string, DerivedKey>>();
  readonly #unsubscribe: () => void;
  /** Scratch space of `encrypt` (see #nextNonce and encrypt): never handed out. */
  readonly #header = Buffer.alloc(MESSAGE_HEADER_BYTES);
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  readonly #nonces = new PublicRandomPool(NONCE_POOL_BYTES);
  /** The key and derived key of the last message decrypted (see decrypt). */
  #lastDecrypt: { readonly key: CachedKey; readonly keyId: Buffer; readonly derived: DerivedKey } | null =
    null;
  /** Targets by the caller's namespaces array: callers usually pass the same array every time. */
  readonly #targetsByArray = new WeakMap<
    readonly string[],
    { readonly custodian: string; readonly namespaces: readonly string[]; readonly target: ResolutionTarget }
  >();

  constructor(keys: KeySource, options: EnvelopeOptions = {}) {
    this.#keys = keys;
    this.#budget = options.messagesPerDerivedKey ?? DEFAULT_MESSAGES_PER_DERIVED_KEY;
    if (!Number.isInteger(this.#budget) || this.#budget < 1 || this.#budget > 2 ** 32) {
      throw new TypeError('messagesPerDerivedKey must be an integer from 1 to 2^32');
    }
    this.#unsubscribe = keys.onKeyLeave((key) => this.#forget(key));
  }

  /** Drops every derived key (zeroed) and stops following the key source. */
  close(): void {
    this.#unsubscribe();
    for (const key of [...this.#encrypting.keys(), ...this.#decrypting.keys()]) this.#forget(key);
  }

  /**
   * Encrypts one message; the ciphertext is one buffer (header ‖ ciphertext ‖ tag), allocated once
   * at its full size: header and tag are written into it, the body copied in from the cipher's
   * output (Node's cipher cannot write into a caller's buffer, so one copy is the least there is).
   */
  async encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Buffer> {
    const target = this.#checkEncrypt(plaintext, options);
    // Everything runs in the turn the key is found held: it cannot leave L1 (and be zeroed) mid-way.
    return withActiveKey(this.#keys, target, (resolution) => {
      const state = this.#encryptState(resolution.key);
      const out = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES + plaintext.length + TAG_BYTES);
      // The header is built in a scratch buffer (the cipher copies its AAD at once), then copied in.
      const header = this.#header;
      const cipher = this.#startCipher(state, header, checkAad(options.aad));
      out.set(header, 0);
      // One copy of the body: Node's cipher cannot write into a caller's buffer (BENCHMARKS.md,
      // issue 17, for what feeding it in pieces and a slab of outputs measured: no gain).
      out.set(cipher.update(plaintext), MESSAGE_HEADER_BYTES);
      // GCM emits everything from update(); final() only computes the tag.
      cipher.final();
      out.set(cipher.getAuthTag(), MESSAGE_HEADER_BYTES + plaintext.length);
      return out;
    });
  }

  /**
   * The same ciphertext as `encrypt`, as its three parts (header, ciphertext, tag) without joining
   * them, for a caller writing with writev or into its own record layout.
   */
  async encryptParts(plaintext: Uint8Array, options: EncryptOptions): Promise<[Buffer, Buffer, Buffer]> {
    const target = this.#checkEncrypt(plaintext, options);
    // Everything runs in the turn the key is found held: it cannot leave L1 (and be zeroed) mid-way.
    return withActiveKey(this.#keys, target, (resolution): [Buffer, Buffer, Buffer] => {
      const state = this.#encryptState(resolution.key);
      const header = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES);
      const cipher = this.#startCipher(state, header, checkAad(options.aad));
      const body = cipher.update(plaintext);
      // GCM emits everything from update(); final() only computes the tag.
      cipher.final();
      return [header, body, cipher.getAuthTag()];
    });
  }

  /** The arguments of an encrypt checked (TypeError on misuse); the target of its namespaces. */
  #checkEncrypt(plaintext: Uint8Array, options: EncryptOptions): ResolutionTarget {
    if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Uint8Array');
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('encrypt needs { custodian, namespaces }');
    }
    checkAad(options.aad);
    return this.#target(options);
  }

  /** Writes the header into `header` (97 bytes) and answers a cipher with it (and `aad`) as AAD. */
  #startCipher(state: EncryptState, header: Buffer, aad: Uint8Array): CipherGCM {
    writePrefix(header, MODE_MESSAGE, state.keyId, state.derived.salt);
    const nonce = this.#nextNonce();
    header.set(nonce, OFFSET_NONCE);
    header.set(state.derived.commitment, OFFSET_COMMITMENT);
    const cipher = createCipheriv('aes-256-gcm', state.derived.key, nonce);
    cipher.setAAD(aad.length === 0 ? header : Buffer.concat([header, aad]));
    return cipher;
  }

  /**
   * A fresh random nonce, from a pool the CSPRNG fills NONCE_POOL_BYTES at a time (one call and no
   * allocation per message, where randomBytes made both). Each pool byte is used once; nonces are
   * public (they are in every header), so a pool of them is nothing to protect. The answer is a
   * scratch buffer, valid until the next call: the cipher copies its IV at once.
   */
  #nextNonce(): Buffer {
    return this.#nonces.fill(this.#nonce);
  }

  /** Decrypts one message; see DecryptOptions for the expected scope. */
  async decrypt(ciphertext: Uint8Array, options: DecryptOptions = {}): Promise<Buffer> {
    return (await this.decryptWithInfo(ciphertext, options)).plaintext;
  }

  /** `decrypt`, answering also which scope and key the message was under. */
  async decryptWithInfo(ciphertext: Uint8Array, options: DecryptOptions = {}): Promise<DecryptResult> {
    if (!(ciphertext instanceof Uint8Array)) throw new TypeError('ciphertext must be a Uint8Array');
    if (typeof options !== 'object' || options === null)
      throw new TypeError('decrypt options must be an object');
    const aad = checkAad(options.aad);
    const expected = scopeCheckOf(options);
    if (ciphertext.length < MESSAGE_OVERHEAD || !hasPrefix(ciphertext, MODE_MESSAGE)) {
      throw new DecryptionFailedError();
    }
    const bytes = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.length);
    const keyId = bytes.subarray(OFFSET_KEY_ID, OFFSET_KEY_ID + KEY_ID_BYTES);
    const salt = bytes.subarray(OFFSET_SALT, OFFSET_SALT + SALT_BYTES);
    const memo = this.#lastDecrypt;
    if (memo?.keyId.equals(keyId) && memo.derived.salt.equals(salt)) {
      // Same key and salt as the last message (the common case: a derived key serves many
      // messages). The memo goes when its key leaves L1, so it never outlives a disable.
      return this.#open(bytes, memo.key, memo.derived, expected, aad);
    }
    // Everything runs in the turn the key is found held: it cannot leave L1 (and be zeroed) mid-way.
    return withKeyForDecrypt(this.#keys, keyId.toString('hex'), (key) => {
      if (key === null) throw new DecryptionFailedError();
      let derived: DerivedKey;
      try {
        derived = this.#decryptKey(key, salt);
      } catch {
        throw new DecryptionFailedError();
      }
      this.#lastDecrypt = { key, keyId: Buffer.from(keyId), derived };
      return this.#open(bytes, key, derived, expected, aad);
    });
  }

  /** A message opened with its key's derived key (synchronous: see decryptWithInfo). */
  #open(
    bytes: Buffer,
    used: CachedKey,
    derived: DerivedKey,
    expected: ScopeCheck | null,
    aad: Uint8Array,
  ): DecryptResult {
    // Another scope's key: the same failure as every other, before anything is decrypted.
    if (!inExpectedScope(used, expected)) throw new DecryptionFailedError();
    const info = keyInfoOf(used);
    try {
      const commitment = bytes.subarray(OFFSET_COMMITMENT, OFFSET_COMMITMENT + derived.commitment.length);
      if (!timingSafeEqual(commitment, derived.commitment)) throw new DecryptionFailedError();
      const header = bytes.subarray(0, MESSAGE_HEADER_BYTES);
      const decipher = createDecipheriv(
        'aes-256-gcm',
        derived.key,
        bytes.subarray(OFFSET_NONCE, OFFSET_NONCE + NONCE_BYTES),
      );
      decipher.setAAD(aad.length === 0 ? header : Buffer.concat([header, aad]));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const body = decipher.update(bytes.subarray(MESSAGE_HEADER_BYTES, bytes.length - TAG_BYTES));
      try {
        decipher.final();
      } catch {
        body.fill(0);
        throw new DecryptionFailedError();
      }
      return { plaintext: body, ...info };
    } catch {
      throw new DecryptionFailedError();
    }
  }

  #target(options: EncryptOptions): ResolutionTarget {
    if (typeof options.custodian !== 'string' || !Array.isArray(options.namespaces)) {
      throw new TypeError('encrypt needs { custodian, namespaces }');
    }
    const byArray = this.#targetsByArray.get(options.namespaces);
    // Arrays are mutable: the remembered copy must still match element by element.
    if (
      byArray !== undefined &&
      byArray.custodian === options.custodian &&
      byArray.namespaces.length === options.namespaces.length &&
      byArray.namespaces.every((ns, i) => ns === options.namespaces[i])
    ) {
      return byArray.target;
    }
    const target = this.#targetByValue(options);
    this.#targetsByArray.set(options.namespaces, {
      custodian: options.custodian,
      namespaces: [...options.namespaces],
      target,
    });
    return target;
  }

  #targetByValue(options: EncryptOptions): ResolutionTarget {
    // JSON, not a separator: namespaces may contain any character, NUL included.
    const cacheKey = JSON.stringify([options.custodian, ...options.namespaces]);
    let target = this.#targets.get(cacheKey);
    if (target === undefined) {
      target = this.#keys.target(options.custodian, options.namespaces);
      this.#targets.set(cacheKey, target);
    }
    return target;
  }

  #encryptState(key: CachedKey): EncryptState {
    let state = this.#encrypting.get(key);
    if (state === undefined) {
      const keyId = Buffer.from(key.keyId, 'hex');
      state = {
        keyId,
        derived: deriveKey(key.key, randomBytes(SALT_BYTES), keyId, MODE_MESSAGE),
        remaining: this.#budget,
      };
      this.#encrypting.set(key, state);
    } else if (state.remaining === 0) {
      zeroDerived(state.derived);
      state.derived = deriveKey(key.key, randomBytes(SALT_BYTES), state.keyId, MODE_MESSAGE);
      state.remaining = this.#budget;
    }
    state.remaining--;
    return state;
  }

  #decryptKey(key: CachedKey, salt: Buffer): DerivedKey {
    let perKey = this.#decrypting.get(key);
    if (perKey === undefined) {
      perKey = new LRUCache<string, DerivedKey>({
        max: DERIVED_PER_KEY,
        dispose: (derived) => {
          if (this.#lastDecrypt?.derived === derived) this.#lastDecrypt = null;
          zeroDerived(derived);
        },
      });
      this.#decrypting.set(key, perKey);
    }
    const saltHex = salt.toString('hex');
    let derived = perKey.get(saltHex);
    if (derived === undefined) {
      derived = deriveKey(key.key, Buffer.from(salt), Buffer.from(key.keyId, 'hex'), MODE_MESSAGE);
      perKey.set(saltHex, derived);
    }
    return derived;
  }

  #forget(key: CachedKey): void {
    if (this.#lastDecrypt?.key === key) this.#lastDecrypt = null;
    const state = this.#encrypting.get(key);
    if (state !== undefined) zeroDerived(state.derived);
    this.#encrypting.delete(key);
    this.#decrypting.get(key)?.clear();
    this.#decrypting.delete(key);
  }
}

function checkAad(aad: Uint8Array | undefined): Uint8Array {
  if (aad === undefined) return EMPTY;
  if (!(aad instanceof Uint8Array)) throw new TypeError('aad must be a Uint8Array');
  return aad;
}
