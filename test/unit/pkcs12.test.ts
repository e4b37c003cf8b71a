import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type ErrorCode, KeyledgerError } from '../../src/domain/errors.js';
import {
  bmpString,
  DerError,
  DerReader,
  encodeOid,
  explicit,
  integer,
  nullValue,
  octetString,
  sequence,
  set,
} from '../../src/providers/keystore/der.js';
import { OID } from '../../src/providers/keystore/oids.js';
import { pbes2Encrypt } from '../../src/providers/keystore/pbes2.js';
import {
  type Pkcs12SecretKeyEntry,
  readPkcs12SecretKeys,
  writePkcs12SecretKeys,
} from '../../src/providers/keystore/pkcs12.js';
import { encodeMacData } from '../../src/providers/keystore/pkcs12Mac.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import {
  javaSecretKeys,
  keytoolGenKeyPair,
  keytoolGenSecKey,
  keytoolImportKeystore,
  keytoolList,
  keytoolListEntries,
  requireKeytool,
  withTempDir,
} from '../helpers/keytool.js';

const PASSWORD = 'changeit-Test1';
const HOSTILE: readonly ErrorCode[] = ['ERR_KEYSTORE_FORMAT', 'ERR_KEYSTORE_PASSWORD'];

/** Made by `keytool -genseckey -keyalg AES -keysize 256 -alias NonAscii` of Temurin 25.0.3. */
const JAVA25_NON_ASCII = {
  password: 'pässwörd-€-🔑',
  keyHex: 'bb9d0f2f3c4f9ac51429708acc4b701929f65f1fc655e91f9004194e18f44315',
  store:
    'MIIBpQIBAzCCAU8GCSqGSIb3DQEHAaCCAUAEggE8MIIBODCCATQGCSqGSIb3DQEHAaCCASUEggEhMIIBHTCCARkGCyqGSIb3DQEMCgEF' +
    'oIHDMIHABgsqhkiG9w0BDAoBAqCBsASBrTCBqjBmBgkqhkiG9w0BBQ0wWTA4BgkqhkiG9w0BBQwwKwQUP4/OYW9ZrEcqwx9u2YvBZzQ/' +
    'qm8CAicQAgEgMAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBDhb4LV4rhLHMK6gwLKqcP9BEC5lOk43NIEEV6X0p+9ddEWPENiGSbT' +
    'tgv/kgzVthpFjsg2OzRXYR61EcYEcVRh3mxM5VDZhHk6okhkvNh+Pt6xMUQwHwYJKoZIhvcNAQkUMRIeEABuAG8AbgBhAHMAYwBpAGkw' +
    'IQYJKoZIhvcNAQkVMRQEElRpbWUgMTc5NTU1ODUyMTQ3MzBNMDEwDQYJYIZIAWUDBAIBBQAEIAOtlRak1ab/VKoZ4vJp4qYy3o9LXYAW' +
    'FeSf3rbYybysBBSo2LUM6nC2fTNqHDNbJtOpwYORMAICJxA=',
} as const;

function hex(key: SecretBytes): string {
  return Buffer.from(key.expose()).toString('hex');
}

function summary(
  entries: readonly Pkcs12SecretKeyEntry[],
): { alias: string; algorithm: string; hex: string }[] {
  return entries
    .map((e) => ({ alias: e.alias, algorithm: e.algorithm, hex: hex(e.key) }))
    .sort((a, b) => a.alias.localeCompare(b.alias));
}

function nth<T>(items: readonly T[], index: number): T {
  const item = items[index];
  assert.ok(item !== undefined, `no item ${index}`);
  return item;
}

function randomKey(length = 32): SecretBytes {
  return SecretBytes.adopt(new Uint8Array(randomBytes(length)));
}

/** Asserts that `fn` fails with a KeyledgerError of one of `codes`, and that nothing secret leaks into it. */
function expectKeystoreError(
  fn: () => unknown,
  codes: readonly ErrorCode[],
  context: string,
  secrets: readonly string[] = [PASSWORD],
): KeyledgerError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `${context}: expected an error, got a result`);
  assert.ok(
    caught instanceof KeyledgerError,
    `${context}: expected a KeyledgerError, got ${caught instanceof Error ? caught.stack : String(caught)}`,
  );
  assert.ok(codes.includes(caught.code), `${context}: unexpected code ${caught.code}: ${caught.message}`);
  const rendered = `${caught.message} ${JSON.stringify(caught.details)}`;
  for (const secret of secrets) assert.ok(!rendered.includes(secret), `${context}: error mentions a secret`);
  return caught;
}

/** Small, seeded PRNG so a failing bit flip can be reproduced from the message. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PFX around hand-made SafeContents with a valid MAC, to reach the checks behind the MAC. */
function storeWithSafeContents(safeContents: Uint8Array, password = PASSWORD): Uint8Array {
  const authSafe = sequence(sequence(encodeOid(OID.data), explicit(0, octetString(safeContents))));
  return sequence(
    integer(3),
    sequence(encodeOid(OID.data), explicit(0, octetString(authSafe))),
    encodeMacData(password, 1000, authSafe),
  );
}

function secretBagWith(
  encryptedPrivateKeyInfo: Uint8Array,
  alias = 'k',
  secretType: string = OID.pkcs8ShroudedKeyBag,
) {
  return sequence(
    encodeOid(OID.secretBag),
    explicit(0, sequence(encodeOid(secretType), explicit(0, octetString(encryptedPrivateKeyInfo)))),
    set(sequence(encodeOid(OID.friendlyName), set(bmpString(alias)))),
  );
}

function pbes2Epki(prfOid: string, cipherOid: string, ciphertext: Uint8Array): Uint8Array {
  return sequence(
    sequence(
      encodeOid(OID.pbes2),
      sequence(
        sequence(
          encodeOid(OID.pbkdf2),
          sequence(octetString(randomBytes(20)), integer(1000), sequence(encodeOid(prfOid), nullValue())),
        ),
        sequence(encodeOid(cipherOid), octetString(randomBytes(16))),
      ),
    ),
    octetString(ciphertext),
  );
}

function secretKeyInfo(version: number, key: Uint8Array): Uint8Array {
  return sequence(
    integer(version),
    sequence(encodeOid('2.16.840.1.101.3.4.1'), nullValue()),
    octetString(key),
  );
}

/** An AES key wrapped exactly as the writer does, under `password`. */
function validEpki(password = PASSWORD, plaintext = secretKeyInfo(0, randomBytes(32))): Uint8Array {
  const shrouded = pbes2Encrypt(plaintext, password, 1000);
  return sequence(shrouded.algorithmIdentifier, octetString(shrouded.ciphertext));
}

describe('pkcs12: DER codec', () => {
  it('round-trips OIDs, including large arcs, and rejects non-minimal arcs', () => {
    for (const oid of [
      OID.secretBag,
      OID.sha256,
      '2.25.329800735698586629295641978511506172918',
      '0.0',
      '2.999',
    ]) {
      assert.equal(new DerReader(encodeOid(oid)).oid(), oid);
    }
    assert.throws(() => new DerReader(Uint8Array.of(0x06, 0x02, 0x80, 0x01)).oid(), DerError);
    assert.throws(() => new DerReader(Uint8Array.of(0x06, 0x01, 0x81)).oid(), DerError);
    assert.throws(() => new DerReader(Uint8Array.of(0x06, 0x00)).oid(), DerError);
  });

  it('round-trips integers and rejects negative, oversized and non-minimal ones', () => {
    for (const value of [0, 1, 127, 128, 255, 256, 10_000, 0x7fffffff]) {
      assert.equal(new DerReader(integer(value)).integer(), value);
    }
    for (const bad of [
      [0x02, 0x00],
      [0x02, 0x01, 0xff],
      [0x02, 0x02, 0x00, 0x7f],
      [0x02, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00],
      [0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00],
    ]) {
      assert.throws(() => new DerReader(Uint8Array.from(bad)).integer(), DerError, bad.join(','));
    }
  });

  it('uses long-form lengths from 128 bytes on, and reads them back', () => {
    for (const size of [0, 127, 128, 255, 256, 70_000]) {
      const encoded = octetString(new Uint8Array(size).fill(7));
      const reader = new DerReader(encoded);
      assert.equal(reader.octetString().length, size);
      reader.end('test');
    }
  });

  it('sorts SET OF members by encoding, as DER requires', () => {
    const reader = new DerReader(set(integer(300), integer(2), integer(1))).set();
    assert.deepEqual([reader.integer(), reader.integer(), reader.integer()], [1, 2, 300]);
  });

  it('round-trips BMPStrings with characters outside the BMP', () => {
    assert.equal(new DerReader(bmpString('Ab-€-🔑')).bmpString(), 'Ab-€-🔑');
    assert.throws(() => new DerReader(Uint8Array.of(0x1e, 0x01, 0x41)).bmpString(), DerError);
  });

  it('never reads past its buffer, even when a parent was cut short', () => {
    const inner = sequence(octetString(Uint8Array.of(1, 2, 3)));
    const cut = inner.subarray(0, inner.length - 1);
    assert.throws(() => new DerReader(cut).sequence(), DerError);
    // A child claiming more than its parent holds fails even if the bytes exist further on.
    const lying = Uint8Array.of(0x30, 0x02, 0x04, 0x03, 0x01, 0x02, 0x03);
    assert.throws(() => new DerReader(lying.subarray(0, 4)).sequence().octetString(), DerError);
    assert.throws(() => new DerReader(lying).sequence().octetString(), DerError);
  });
});

describe('pkcs12: keytool is available', () => {
  it('finds keytool (Java 17) — the compatibility tests below need it', () => {
    requireKeytool();
  });
});

describe('pkcs12: reading keystores made by keytool', () => {
  before(requireKeytool);

  it('reads a single AES-256 key with the bytes Java itself decrypts', async () => {
    await withTempDir(async (dir) => {
      const store = join(dir, 'one.p12');
      keytoolGenSecKey(store, 'MyKey', PASSWORD);
      const entries = readPkcs12SecretKeys(readFileSync(store), PASSWORD);
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.alias, 'mykey');
      assert.equal(entries[0]?.algorithm, 'AES');
      assert.equal(entries[0]?.key.length, 32);
      assert.deepEqual(summary(entries), await javaSecretKeys(store, PASSWORD));
    });
  });

  it('reads several keys of several algorithms and sizes', async () => {
    await withTempDir(async (dir) => {
      const store = join(dir, 'many.p12');
      keytoolGenSecKey(store, 'aes128', PASSWORD, { keysize: 128 });
      keytoolGenSecKey(store, 'aes192', PASSWORD, { keysize: 192 });
      keytoolGenSecKey(store, 'Aes256', PASSWORD, { keysize: 256 });
      keytoolGenSecKey(store, 'hmac', PASSWORD, { keyalg: 'HmacSHA256', keysize: 256 });
      keytoolGenSecKey(store, 'tdes', PASSWORD, { keyalg: 'DESede', keysize: 168 });
      keytoolGenSecKey(store, 'sha3', PASSWORD, { keyalg: 'HmacSHA3-256', keysize: 256 });
      const entries = summary(readPkcs12SecretKeys(readFileSync(store), PASSWORD));
      assert.deepEqual(
        entries.map((e) => [e.alias, e.algorithm, e.hex.length / 2]),
        [
          ['aes128', 'AES', 16],
          ['aes192', 'AES', 24],
          ['aes256', 'AES', 32],
          ['hmac', 'HmacSHA256', 32],
          ['sha3', 'HmacSHA3-256', 32],
          ['tdes', 'DESede', 24],
        ],
      );
      assert.deepEqual(entries, await javaSecretKeys(store, PASSWORD));
    });
  });

  it('reads stores with an HMAC-SHA1 MAC and PBKDF2-HMAC-SHA1 / AES-128 key protection (older keytool settings)', async () => {
    await withTempDir(async (dir) => {
      const store = join(dir, 'sha1.p12');
      keytoolGenSecKey(store, 'old', PASSWORD, {
        javaOptions: [
          '-J-Dkeystore.pkcs12.macAlgorithm=HmacPBESHA1',
          '-J-Dkeystore.pkcs12.keyProtectionAlgorithm=PBEWithHmacSHA1AndAES_128',
        ],
      });
      const entries = summary(readPkcs12SecretKeys(readFileSync(store), PASSWORD));
      assert.equal(entries.length, 1);
      assert.deepEqual(entries, await javaSecretKeys(store, PASSWORD));
    });
  });

  it('refuses legacy 3DES key protection as ERR_KEYSTORE_FORMAT, naming the OID', async () => {
    await withTempDir((dir) => {
      const store = join(dir, 'legacy.p12');
      keytoolGenSecKey(store, 'legacy', PASSWORD, { javaOptions: ['-J-Dkeystore.pkcs12.legacy'] });
      const error = expectKeystoreError(
        () => readPkcs12SecretKeys(readFileSync(store), PASSWORD),
        ['ERR_KEYSTORE_FORMAT'],
        'legacy store',
      );
      assert.equal(error.details.oid, '1.2.840.113549.1.12.1.3');
    });
  });

  it('skips private keys and certificates, returning only secret keys', async () => {
    await withTempDir((dir) => {
      const store = join(dir, 'mixed.p12');
      keytoolGenKeyPair(store, 'pair', PASSWORD);
      keytoolGenSecKey(store, 'secret', PASSWORD);
      assert.deepEqual(
        keytoolListEntries(store, PASSWORD)
          .map((e) => e.type)
          .sort(),
        ['PrivateKeyEntry', 'SecretKeyEntry'],
      );
      const entries = readPkcs12SecretKeys(readFileSync(store), PASSWORD);
      assert.deepEqual(
        entries.map((e) => e.alias),
        ['secret'],
      );
    });
  });

  it('reports a wrong password as ERR_KEYSTORE_PASSWORD without echoing it', async () => {
    await withTempDir((dir) => {
      const store = join(dir, 'pw.p12');
      keytoolGenSecKey(store, 'k', PASSWORD);
      const wrong = 'not-the-password';
      const error = expectKeystoreError(
        () => readPkcs12SecretKeys(readFileSync(store), wrong),
        ['ERR_KEYSTORE_PASSWORD'],
        'wrong password',
        [PASSWORD, wrong],
      );
      assert.match(error.message, /password is wrong.*modified/);
    });
  });
});

describe('pkcs12: reading a Java 25 fixture', () => {
  it('reads a Java 25 keystore whose password is not ASCII (PBES2 takes UTF-8, the MAC BMPString)', () => {
    // Java 17 refuses non-ASCII PKCS#12 passwords outright ("Password is not ASCII"), so this store was
    // made once with Temurin 25 keytool and its key printed by Java's KeyStore.getKey.
    const entries = readPkcs12SecretKeys(
      Buffer.from(JAVA25_NON_ASCII.store, 'base64'),
      JAVA25_NON_ASCII.password,
    );
    assert.deepEqual(summary(entries), [
      { alias: 'nonascii', algorithm: 'AES', hex: JAVA25_NON_ASCII.keyHex },
    ]);
    expectKeystoreError(
      () => readPkcs12SecretKeys(Buffer.from(JAVA25_NON_ASCII.store, 'base64'), 'passwort'),
      ['ERR_KEYSTORE_PASSWORD'],
      'non-ASCII store, wrong password',
    );
  });
});

describe('pkcs12: writing keystores', () => {
  it('reads back what it wrote: aliases lower-cased, bytes and algorithms kept, caller keys untouched', () => {
    const input = [
      { alias: 'Primary', key: randomKey(32) },
      { alias: 'small', key: randomKey(16), algorithm: 'AES' },
      { alias: 'mac', key: randomKey(64), algorithm: 'hmacsha512' },
      { alias: 'custom', key: randomKey(10), algorithm: '1.3.6.1.4.1.99999.1' },
    ];
    const bytes = writePkcs12SecretKeys(input, PASSWORD, { iterations: 1000 });
    const entries = summary(readPkcs12SecretKeys(bytes, PASSWORD));
    assert.deepEqual(entries, [
      { alias: 'custom', algorithm: '1.3.6.1.4.1.99999.1', hex: hex(nth(input, 3).key) },
      { alias: 'mac', algorithm: 'HmacSHA512', hex: hex(nth(input, 2).key) },
      { alias: 'primary', algorithm: 'AES', hex: hex(nth(input, 0).key) },
      { alias: 'small', algorithm: 'AES', hex: hex(nth(input, 1).key) },
    ]);
    for (const entry of input) assert.equal(entry.key.isZeroed, false);
  });

  it('round-trips a non-ASCII password, including characters outside the BMP', () => {
    // Java 17 cannot open such a store (see the Java 25 fixture above); Java 25 reads it.
    const key = randomKey();
    const password = JAVA25_NON_ASCII.password;
    const bytes = writePkcs12SecretKeys([{ alias: 'k', key }], password, { iterations: 1000 });
    assert.equal(hex(nth(readPkcs12SecretKeys(bytes, password), 0).key), hex(key));
  });

  it('writes an empty keystore that reads back empty', () => {
    assert.deepEqual(readPkcs12SecretKeys(writePkcs12SecretKeys([], PASSWORD), PASSWORD), []);
  });

  it('uses fresh salts and IVs: the same input never encrypts the same way twice', () => {
    const key = randomKey();
    const a = writePkcs12SecretKeys([{ alias: 'k', key }], PASSWORD, { iterations: 1 });
    const b = writePkcs12SecretKeys([{ alias: 'k', key }], PASSWORD, { iterations: 1 });
    assert.notDeepEqual(a, b);
  });

  it('rejects bad input with ERR_INVALID_ARGUMENT', () => {
    const cases: [string, () => unknown][] = [
      ['empty alias', () => writePkcs12SecretKeys([{ alias: '', key: randomKey() }], PASSWORD)],
      [
        'duplicate alias',
        () =>
          writePkcs12SecretKeys(
            [
              { alias: 'Dup', key: randomKey() },
              { alias: 'dup', key: randomKey() },
            ],
            PASSWORD,
          ),
      ],
      [
        'unknown algorithm',
        () => writePkcs12SecretKeys([{ alias: 'k', key: randomKey(), algorithm: 'Rot13' }], PASSWORD),
      ],
      ['bad AES length', () => writePkcs12SecretKeys([{ alias: 'k', key: randomKey(20) }], PASSWORD)],
      [
        'empty key',
        () => writePkcs12SecretKeys([{ alias: 'k', key: randomKey(0), algorithm: 'HmacSHA256' }], PASSWORD),
      ],
      ['zero iterations', () => writePkcs12SecretKeys([], PASSWORD, { iterations: 0 })],
      ['fractional iterations', () => writePkcs12SecretKeys([], PASSWORD, { iterations: 1.5 })],
      [
        'zeroed key',
        () => {
          const key = randomKey();
          key.zero();
          return writePkcs12SecretKeys([{ alias: 'k', key }], PASSWORD);
        },
      ],
    ];
    for (const [name, fn] of cases) expectKeystoreError(fn, ['ERR_INVALID_ARGUMENT'], name);
  });

  describe('with keytool', () => {
    before(requireKeytool);

    it('is listed by keytool -list with the right aliases as SecretKeyEntry, and Java decrypts the same bytes', async () => {
      await withTempDir(async (dir) => {
        const input = [
          { alias: 'Alpha', key: randomKey(32) },
          { alias: 'beta', key: randomKey(16) },
          { alias: 'gamma', key: randomKey(32), algorithm: 'HmacSHA256' },
        ];
        const store = join(dir, 'ours.p12');
        writeFileSync(store, writePkcs12SecretKeys(input, PASSWORD));
        assert.deepEqual(keytoolListEntries(store, PASSWORD), [
          { alias: 'alpha', type: 'SecretKeyEntry' },
          { alias: 'beta', type: 'SecretKeyEntry' },
          { alias: 'gamma', type: 'SecretKeyEntry' },
        ]);
        assert.deepEqual(await javaSecretKeys(store, PASSWORD), [
          { alias: 'alpha', algorithm: 'AES', hex: hex(nth(input, 0).key) },
          { alias: 'beta', algorithm: 'AES', hex: hex(nth(input, 1).key) },
          { alias: 'gamma', algorithm: 'HmacSHA256', hex: hex(nth(input, 2).key) },
        ]);
      });
    });

    it('survives keytool -importkeystore: Java re-encrypts our keys and we read the same bytes back', async () => {
      await withTempDir((dir) => {
        const input = [
          { alias: 'one', key: randomKey(32) },
          { alias: 'two', key: randomKey(24) },
        ];
        const src = join(dir, 'src.p12');
        const dest = join(dir, 'dest.p12');
        writeFileSync(src, writePkcs12SecretKeys(input, PASSWORD));
        keytoolImportKeystore(src, dest, PASSWORD);
        assert.deepEqual(keytoolList(dest, PASSWORD), ['one', 'two']);
        const copied = readFileSync(dest);
        assert.notDeepEqual(new Uint8Array(copied), new Uint8Array(readFileSync(src)));
        assert.deepEqual(summary(readPkcs12SecretKeys(copied, PASSWORD)), [
          { alias: 'one', algorithm: 'AES', hex: hex(nth(input, 0).key) },
          { alias: 'two', algorithm: 'AES', hex: hex(nth(input, 1).key) },
        ]);
      });
    });
  });
});

describe('pkcs12: hostile and malformed input', () => {
  it('rejects empty input, garbage and non-PKCS#12 DER as ERR_KEYSTORE_FORMAT', () => {
    const rng = mulberry32(7);
    const garbage = Uint8Array.from({ length: 512 }, () => Math.floor(rng() * 256));
    const valid = writePkcs12SecretKeys([{ alias: 'k', key: randomKey() }], PASSWORD, { iterations: 1 });
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['garbage', garbage],
      ['a lone SEQUENCE tag', Uint8Array.of(0x30)],
      ['an empty SEQUENCE', Uint8Array.of(0x30, 0x00)],
      ['indefinite length', Uint8Array.of(0x30, 0x80, 0x02, 0x01, 0x03, 0x00, 0x00)],
      ['non-minimal length', Uint8Array.of(0x30, 0x81, 0x03, 0x02, 0x01, 0x03)],
      ['a huge length', Uint8Array.of(0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x03)],
      ['too many length octets', Uint8Array.of(0x30, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1)],
      ['version 2', sequence(integer(2))],
      ['an OID', encodeOid(OID.data)],
      ['trailing bytes', Uint8Array.from([...valid, 0x00])],
      ['no MAC', sequence(integer(3), sequence(encodeOid(OID.data), explicit(0, octetString(sequence()))))],
    ];
    for (const [name, bytes] of cases)
      expectKeystoreError(() => readPkcs12SecretKeys(bytes, PASSWORD), ['ERR_KEYSTORE_FORMAT'], name);
  });

  it('rejects every truncation of a keystore', () => {
    const bytes = writePkcs12SecretKeys(
      [
        { alias: 'a', key: randomKey() },
        { alias: 'b', key: randomKey(16) },
      ],
      PASSWORD,
      { iterations: 100 },
    );
    for (let length = 0; length < bytes.length; length++) {
      expectKeystoreError(
        () => readPkcs12SecretKeys(bytes.subarray(0, length), PASSWORD),
        HOSTILE,
        `truncated to ${length}`,
      );
    }
  });

  it('rejects random bit flips in a written keystore as FORMAT or PASSWORD, never anything else', () => {
    const key = randomKey();
    const bytes = writePkcs12SecretKeys([{ alias: 'victim', key }], PASSWORD, { iterations: 500 });
    const rng = mulberry32(0x5eed);
    const counts = { ERR_KEYSTORE_FORMAT: 0, ERR_KEYSTORE_PASSWORD: 0 };
    for (let round = 0; round < 300; round++) {
      const position = Math.floor(rng() * bytes.length);
      const bit = Math.floor(rng() * 8);
      const flipped = Uint8Array.from(bytes);
      flipped[position] = (flipped[position] ?? 0) ^ (1 << bit);
      const error = expectKeystoreError(
        () => readPkcs12SecretKeys(flipped, PASSWORD),
        HOSTILE,
        `bit ${bit} of byte ${position}`,
        [PASSWORD, hex(key)],
      );
      if (error.code === 'ERR_KEYSTORE_FORMAT' || error.code === 'ERR_KEYSTORE_PASSWORD')
        counts[error.code] += 1;
    }
    // Flips inside the MAC-covered content are caught by the MAC; flips in the framing by the parser.
    assert.ok(counts.ERR_KEYSTORE_PASSWORD > 0 && counts.ERR_KEYSTORE_FORMAT > 0, JSON.stringify(counts));
  });

  it('rejects every truncation and random bit flips of a keytool-made keystore', async () => {
    requireKeytool();
    await withTempDir((dir) => {
      const store = join(dir, 'flip.p12');
      keytoolGenSecKey(store, 'k', PASSWORD);
      const bytes = new Uint8Array(readFileSync(store));
      for (let length = 0; length < bytes.length; length++) {
        expectKeystoreError(
          () => readPkcs12SecretKeys(bytes.subarray(0, length), PASSWORD),
          HOSTILE,
          `cut at ${length}`,
        );
      }
      const rng = mulberry32(42);
      for (let round = 0; round < 100; round++) {
        const position = Math.floor(rng() * bytes.length);
        const flipped = Uint8Array.from(bytes);
        flipped[position] = (flipped[position] ?? 0) ^ (1 << Math.floor(rng() * 8));
        expectKeystoreError(() => readPkcs12SecretKeys(flipped, PASSWORD), HOSTILE, `flip at ${position}`);
      }
    });
  });

  it('behind a valid MAC, refuses unsupported algorithms as ERR_KEYSTORE_FORMAT naming the OID', () => {
    const block = randomBytes(32);
    const hmacWithSha512 = '1.2.840.113549.2.11';
    const aes192Cbc = '2.16.840.1.101.3.4.1.22';
    const cases: [string, Uint8Array, string][] = [
      [
        'PRF HMAC-SHA512',
        sequence(secretBagWith(pbes2Epki(hmacWithSha512, OID.aes256Cbc, block))),
        hmacWithSha512,
      ],
      [
        'cipher AES-192-CBC',
        sequence(secretBagWith(pbes2Epki(OID.hmacWithSha256, aes192Cbc, block))),
        aes192Cbc,
      ],
      [
        'a secret bag that is not a shrouded key',
        sequence(secretBagWith(pbes2Epki(OID.hmacWithSha256, OID.aes256Cbc, block), 'k', OID.keyBag)),
        OID.keyBag,
      ],
    ];
    for (const [name, safeContents, oid] of cases) {
      const error = expectKeystoreError(
        () => readPkcs12SecretKeys(storeWithSafeContents(safeContents), PASSWORD),
        ['ERR_KEYSTORE_FORMAT'],
        name,
      );
      assert.equal(error.details.oid, oid, name);
    }
  });

  it('behind a valid MAC, rejects malformed content and duplicate aliases as ERR_KEYSTORE_FORMAT', () => {
    const epki = validEpki();
    const cases: [string, Uint8Array][] = [
      ['SafeContents that are not a SEQUENCE', octetString(Uint8Array.of(1, 2, 3))],
      ['a bag without an alias', sequence(sequence(encodeOid(OID.secretBag), explicit(0, sequence())))],
      ['two bags with one alias', sequence(secretBagWith(epki, 'Same'), secretBagWith(epki, 'same'))],
      [
        'a decrypted key that is not DER',
        sequence(secretBagWith(validEpki(PASSWORD, Uint8Array.of(1, 2, 3)))),
      ],
      [
        'a decrypted key of version 1',
        sequence(secretBagWith(validEpki(PASSWORD, secretKeyInfo(1, randomBytes(16))))),
      ],
      [
        'a decrypted key that is empty',
        sequence(secretBagWith(validEpki(PASSWORD, secretKeyInfo(0, new Uint8Array(0))))),
      ],
      [
        'ciphertext not a whole number of blocks',
        sequence(secretBagWith(pbes2Epki(OID.hmacWithSha256, OID.aes256Cbc, randomBytes(33)))),
      ],
    ];
    for (const [name, safeContents] of cases) {
      expectKeystoreError(
        () => readPkcs12SecretKeys(storeWithSafeContents(safeContents), PASSWORD),
        ['ERR_KEYSTORE_FORMAT'],
        name,
      );
    }
  });

  it('reports an entry protected by another password as a password problem, not a crash', () => {
    const epki = validEpki('some-other-password');
    // A wrong key passes the CBC padding check about once in 256 tries; the garbage then fails to parse.
    expectKeystoreError(
      () => readPkcs12SecretKeys(storeWithSafeContents(sequence(secretBagWith(epki))), PASSWORD),
      HOSTILE,
      'entry under another password',
    );
  });
});
