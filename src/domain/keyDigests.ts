import { createHash } from 'node:crypto';
import { custodianBytes, type KeyId, type KeyScope, type MetadataHash } from './identities.js';

/** SHA-256 of the metadata's UTF-8 bytes, base64url without padding (43 characters). */
export function metadataHashOf(metadata: string): MetadataHash {
  return createHash('sha256').update(metadata, 'utf8').digest('base64url') as MetadataHash;
}

/**
 * A key's ledger-wide id: the first 16 bytes of SHA-256 over a domain tag and the length-prefixed
 * custodian, namespace and metadata hash, as hex. Deterministic, so retried writes of the same key
 * name the same material stream; scope-bound, so one provider key configured for two scopes is two
 * ledger keys.
 */
export function keyIdOf(scope: KeyScope, metadataHash: MetadataHash): KeyId {
  const hash = createHash('sha256').update('keyledger-keyid-v1\0');
  for (const part of [
    custodianBytes(scope.custodian),
    Buffer.from(scope.namespace, 'utf8'),
    Buffer.from(metadataHash, 'ascii'),
  ]) {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(part.length);
    hash.update(length).update(part);
  }
  return hash.digest().subarray(0, 16).toString('hex') as KeyId;
}
