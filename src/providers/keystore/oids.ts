/** Object identifiers the PKCS#12 codec reads or writes (RFC 7292, RFC 8018, PKCS#9, NIST). */
export const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',

  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  crlBag: '1.2.840.113549.1.12.10.1.4',
  secretBag: '1.2.840.113549.1.12.10.1.5',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',

  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',

  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',

  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha1: '1.2.840.113549.2.7',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes128Cbc: '2.16.840.1.101.3.4.1.2',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

/**
 * Secret-key algorithms by the OID Java's `AlgorithmId` writes into the PKCS#8 structure it wraps a
 * secret key in (observed with Java 17 keytool). Names are Java's key algorithm names; for DES, Java
 * itself reports 'DES/CBC' (the OID's cipher name), but the key algorithm is DES. An OID missing here is
 * reported in dotted form, as Java does. For a name listed twice, the writer uses the first OID.
 */
export const SECRET_KEY_ALGORITHMS: ReadonlyArray<{ readonly name: string; readonly oid: string }> = [
  { name: 'AES', oid: '2.16.840.1.101.3.4.1' },
  { name: 'DES', oid: '1.3.14.3.2.7' },
  { name: 'DESede', oid: '1.3.14.3.2.17' },
  { name: 'DESede', oid: '1.2.840.113549.3.7' },
  { name: 'ARCFOUR', oid: '1.2.840.113549.3.4' },
  { name: 'HmacSHA1', oid: '1.2.840.113549.2.7' },
  { name: 'HmacSHA224', oid: '1.2.840.113549.2.8' },
  { name: 'HmacSHA256', oid: '1.2.840.113549.2.9' },
  { name: 'HmacSHA384', oid: '1.2.840.113549.2.10' },
  { name: 'HmacSHA512', oid: '1.2.840.113549.2.11' },
  { name: 'HmacSHA512/224', oid: '1.2.840.113549.2.12' },
  { name: 'HmacSHA512/256', oid: '1.2.840.113549.2.13' },
  { name: 'HmacSHA3-224', oid: '2.16.840.1.101.3.4.2.13' },
  { name: 'HmacSHA3-256', oid: '2.16.840.1.101.3.4.2.14' },
  { name: 'HmacSHA3-384', oid: '2.16.840.1.101.3.4.2.15' },
  { name: 'HmacSHA3-512', oid: '2.16.840.1.101.3.4.2.16' },
];

export function secretKeyAlgorithmName(oid: string): string {
  return SECRET_KEY_ALGORITHMS.find((a) => a.oid === oid)?.name ?? oid;
}

/** Case-insensitive like Java's `AlgorithmId.get`; a dotted OID is accepted as is. */
export function secretKeyAlgorithmOid(name: string): string | undefined {
  const known = SECRET_KEY_ALGORITHMS.find((a) => a.name.toLowerCase() === name.toLowerCase());
  if (known) return known.oid;
  return /^[0-2](\.(0|[1-9][0-9]*))+$/.test(name) ? name : undefined;
}
