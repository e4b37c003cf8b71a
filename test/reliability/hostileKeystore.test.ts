import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeyledgerError } from '../../src/domain/errors.js';
import { formatSystemKeyMetadata } from '../../src/providers/keyMetadata.js';
import {
  bmpString,
  encodeOid,
  explicit,
  integer,
  nullValue,
  octetString,
  sequence,
  set,
  TAG,
  tlv,
} from '../../src/providers/keystore/der.js';
import { KeystoreKeyProvider } from '../../src/providers/keystore/keystoreKeyProvider.js';
import { OID } from '../../src/providers/keystore/oids.js';
import { pbes2Encrypt } from '../../src/providers/keystore/pbes2.js';
import {
  KEYSTORE_LIMITS,
  openPkcs12Keystore,
  readPkcs12SecretKeys,
  writePkcs12SecretKeys,
} from '../../src/providers/keystore/pkcs12.js';
import { encodeMacData } from '../../src/providers/keystore/pkcs12Mac.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { withTempDir } from '../helpers/keytool.js';
import { scaled, scaledTimeout } from './reliabilityScale.js';

/**
 * Hostile PKCS#12 files (issue 15, part 4). Each known attack on the reader's work (a huge OID arc
 * before the MAC, millions of KDF iterations, thousands of entries, an oversized file) must end in a
 * typed error naming the limit within milliseconds; random and mutated files must end in a typed error
 * or a result, never a crash or a hang.
 */

const PASSWORD = 'hostile-Test1';
const TYPED = new Set(['ERR_KEYSTORE_FORMAT', 'ERR_KEYSTORE_PASSWORD']);
/**
 * Generous for a loaded 2-core machine (they take well under a millisecond idle); the unbounded reader
 * took seconds to minutes on these. The entry-cap case parses 10,000 bags first, so it gets more.
 */
const FAST_MS = 100;
const ENTRIES_MS = 1500;

function authSafeOf(safeContents: Uint8Array): Uint8Array {
  return sequence(sequence(encodeOid(OID.data), explicit(0, octetString(safeContents))));
}

/** A PFX with a real MAC over `safeContents`, to reach what lies behind the MAC. */
function storeWith(safeContents: Uint8Array, macIterations = 1): Uint8Array {
  const authSafe = authSafeOf(safeContents);
  return sequence(
    integer(3),
    sequence(encodeOid(OID.data), explicit(0, octetString(authSafe))),
    encodeMacData(PASSWORD, macIterations, authSafe),
  );
}

/** MacData with a made-up digest: the reader must refuse it before computing anything. */
function fakeMacData(iterations: number, digestOid: Uint8Array = encodeOid(OID.sha256)): Uint8Array {
  return sequence(
    sequence(sequence(digestOid, nullValue()), octetString(new Uint8Array(32))),
    octetString(new Uint8Array(20)),
    integer(iterations),
  );
}

function secretBag(epki: Uint8Array, alias: string): Uint8Array {
  return sequence(
    encodeOid(OID.secretBag),
    explicit(0, sequence(encodeOid(OID.pkcs8ShroudedKeyBag), explicit(0, octetString(epki)))),
    set(sequence(encodeOid(OID.friendlyName), set(bmpString(alias)))),
  );
}

function epkiWithIterations(iterations: number): Uint8Array {
  return sequence(
    sequence(
      encodeOid(OID.pbes2),
      sequence(
        sequence(
          encodeOid(OID.pbkdf2),
          sequence(
            octetString(randomBytes(20)),
            integer(iterations),
            sequence(encodeOid(OID.hmacWithSha256), nullValue()),
          ),
        ),
        sequence(encodeOid(OID.aes256Cbc), octetString(randomBytes(16))),
      ),
    ),
    octetString(randomBytes(48)),
  );
}

function validEpki(key: Uint8Array, iterations: number): Uint8Array {
  const info = sequence(
    integer(0),
    sequence(encodeOid('2.16.840.1.101.3.4.1'), nullValue()),
    octetString(key),
  );
  const shrouded = pbes2Encrypt(info, PASSWORD, iterations);
  return sequence(shrouded.algorithmIdentifier, octetString(shrouded.ciphertext));
}

/** An OID TLV whose one arc is `bytes` long (all continuation bytes but the last). */
function hugeOid(bytes: number): Uint8Array {
  const content = new Uint8Array(bytes).fill(0xff);
  content[0] = 0x2a;
  content[bytes - 1] = 0x01;
  return tlv(TAG.OID, content);
}

/** Runs `fn`, expects a typed keystore error, and returns it with the time taken. */
function refused(fn: () => unknown, what: string): { error: KeyledgerError; ms: number } {
  const start = performance.now();
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  const ms = performance.now() - start;
  assert.ok(caught instanceof KeyledgerError, `${what}: expected a KeyledgerError, got ${String(caught)}`);
  assert.ok(TYPED.has(caught.code), `${what}: unexpected ${caught.code}`);
  return { error: caught, ms };
}

describe('reliability: hostile PKCS#12 keystores', () => {
  it('refuses each known hostile file within milliseconds, naming the limit', () => {
    const validAuthSafe = authSafeOf(sequence());
    const cases: [string, Uint8Array, string][] = [
      [
        'a 200 KB OID arc before the MAC',
        sequence(
          integer(3),
          sequence(hugeOid(200_000), explicit(0, octetString(validAuthSafe))),
          fakeMacData(1),
        ),
        'oidBytes',
      ],
      [
        'a 200 KB OID as the MAC digest algorithm',
        sequence(
          integer(3),
          sequence(encodeOid(OID.data), explicit(0, octetString(validAuthSafe))),
          fakeMacData(1, hugeOid(200_000)),
        ),
        'oidBytes',
      ],
      [
        'a 30-byte OID arc',
        sequence(integer(3), sequence(hugeOid(30), explicit(0, octetString(validAuthSafe))), fakeMacData(1)),
        'oidArcBytes',
      ],
      [
        '5,000,000 MAC iterations',
        sequence(
          integer(3),
          sequence(encodeOid(OID.data), explicit(0, octetString(validAuthSafe))),
          fakeMacData(5_000_000),
        ),
        'iterations',
      ],
      [
        '5,000,000 PBKDF2 iterations behind a valid MAC',
        storeWith(sequence(secretBag(epkiWithIterations(5_000_000), 'slow'))),
        'iterations',
      ],
      [
        `${KEYSTORE_LIMITS.entries + 1} entries`,
        storeWith(
          sequence(
            ...Array.from({ length: KEYSTORE_LIMITS.entries + 1 }, () =>
              sequence(encodeOid(OID.keyBag), explicit(0, nullValue())),
            ),
          ),
        ),
        'entries',
      ],
      ['a file over the size cap', new Uint8Array(KEYSTORE_LIMITS.fileBytes + 1), 'fileBytes'],
    ];
    for (const [what, bytes, limit] of cases) {
      const { error, ms } = refused(() => readPkcs12SecretKeys(bytes, PASSWORD), what);
      assert.equal(error.code, 'ERR_KEYSTORE_FORMAT', what);
      assert.equal(error.details.limit, limit, what);
      const budget = limit === 'entries' ? ENTRIES_MS : FAST_MS;
      assert.ok(ms < budget, `${what}: took ${ms.toFixed(1)} ms`);
    }
  });

  it('opens a store without decrypting its entries, and decrypts only the one asked for', () => {
    // 16 entries at the iteration ceiling: decrypting all of them would take most of a second.
    const keys = Array.from({ length: 16 }, () => randomBytes(32));
    const bytes = storeWith(
      sequence(...keys.map((key, i) => secretBag(validEpki(key, KEYSTORE_LIMITS.iterations), `k${i}`))),
    );
    let start = performance.now();
    const store = openPkcs12Keystore(bytes, PASSWORD);
    const openMs = performance.now() - start;
    assert.equal(store.aliases.length, 16);
    start = performance.now();
    const entry = store.secretKey('k7', PASSWORD);
    const oneMs = performance.now() - start;
    assert.equal(Buffer.from(entry?.key.expose() ?? []).toString('hex'), keys[7]?.toString('hex'));
    assert.equal(store.secretKey('absent', PASSWORD), undefined);
    // Opening costs the parse and one MAC at 1 iteration; it must stay below a few entries' PBKDF2.
    assert.ok(openMs < oneMs * 4, `open ${openMs.toFixed(1)} ms vs one entry ${oneMs.toFixed(1)} ms`);
  });

  it('a provider over a store with a hostile entry still serves the other keys', async () => {
    await withTempDir(async (dir) => {
      const good = randomBytes(32);
      const path = join(dir, 'mixed.p12');
      // The hostile entry passes the structural checks (ceiling respected) but holds garbage.
      writeFileSync(
        path,
        storeWith(
          sequence(
            secretBag(validEpki(good, 1000), 'stk'),
            secretBag(epkiWithIterations(KEYSTORE_LIMITS.iterations), 'broken'),
          ),
        ),
      );
      const passwordFile = join(dir, 'password');
      writeFileSync(passwordFile, PASSWORD, { mode: 0o600 });
      const provider = new KeystoreKeyProvider({
        path,
        password: { file: passwordFile },
        systemKeyAlias: 'stk',
        previousSystemKeyAliases: ['broken'],
        scopes: new Map(),
      });
      try {
        assert.equal((await provider.getSystemKey()).metadata, formatSystemKeyMetadata('stk'));
        // The broken entry fails when (and only when) it is asked for, as a typed error.
        await assert.rejects(provider.unwrapSystemKey(formatSystemKeyMetadata('broken')), (error) => {
          return error instanceof KeyledgerError && TYPED.has(error.code);
        });
        assert.equal((await provider.getSystemKey()).metadata, formatSystemKeyMetadata('stk'));
      } finally {
        await provider.close();
      }
    });
  });

  it('ends every random or mutated keystore in a typed error or a result', {
    timeout: scaledTimeout(60_000, 1_200_000),
  }, () => {
    const key = SecretBytes.adopt(new Uint8Array(randomBytes(32)));
    const valid = writePkcs12SecretKeys(
      [
        { alias: 'a', key },
        { alias: 'b', key: SecretBytes.adopt(new Uint8Array(randomBytes(16))) },
      ],
      PASSWORD,
      { iterations: 1 },
    );
    const mutation = fc.oneof(
      // Random bytes, sometimes opened by a SEQUENCE tag so the parser gets past the first byte.
      fc.uint8Array({ maxLength: 2048 }).map((b) => Uint8Array.from([0x30, ...b])),
      fc.uint8Array({ maxLength: 512 }),
      // Byte edits, truncations and splices of a valid store.
      fc
        .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        })
        .map((edits) => {
          const copy = Uint8Array.from(valid);
          for (const [at, value] of edits) copy[at] = value;
          return copy;
        }),
      fc.nat(valid.length).map((n) => valid.subarray(0, n)),
      fc
        .tuple(fc.nat(valid.length), fc.nat(valid.length), fc.uint8Array({ maxLength: 64 }))
        .map(([from, to, insert]) =>
          Uint8Array.from([
            ...valid.subarray(0, Math.min(from, to)),
            ...insert,
            ...valid.subarray(Math.max(from, to)),
          ]),
        ),
    );
    // Edits behind a valid MAC, so the parser past the MAC sees hostile structure too.
    const safeContents = sequence(
      secretBag(validEpki(randomBytes(32), 1), 'x'),
      secretBag(validEpki(randomBytes(16), 1), 'y'),
    );
    const behindMac = fc
      .array(fc.tuple(fc.nat(safeContents.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      })
      .map((edits) => {
        const copy = Uint8Array.from(safeContents);
        for (const [at, value] of edits) copy[at] = value;
        return storeWith(copy);
      });
    let results = 0;
    let errors = 0;
    fc.assert(
      fc.property(fc.oneof(mutation, behindMac), (bytes) => {
        const start = performance.now();
        try {
          const entries = readPkcs12SecretKeys(bytes, PASSWORD);
          results += 1;
          for (const entry of entries) entry.key.zero();
        } catch (error) {
          if (!(error instanceof KeyledgerError) || !TYPED.has(error.code)) throw error;
          errors += 1;
        }
        // A single input may cost one MAC at 1 iteration and a PBKDF2 per entry, never seconds.
        assert.ok(performance.now() - start < 1000, 'took over a second');
      }),
      { numRuns: scaled(400, 20_000), seed: Number(process.env.KEYLEDGER_FC_SEED ?? Date.now() % 2 ** 31) },
    );
    assert.ok(results + errors > 0);
    console.log(
      `hostile keystores: ${results + errors} tried, ${errors} typed errors, ${results} read, 0 crashes`,
    );
  });
});
