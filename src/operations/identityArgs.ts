import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import {
  type Custodian,
  custodianFromBytes,
  formatScope,
  isKeyId,
  isMetadataHash,
  type KeyScope,
  parseCustodian,
  parseNamespace,
} from '../domain/identities.js';
import type { Ledger } from '../ledger/ledger.js';

/**
 * How users name custodians, scopes and keys, in the CLI and in the API alike.
 *
 * A custodian is written as HBase's shell writes it (standard base64, or `*` for the global one), or
 * by its plain name with the prefix `name=`: `name=tenant-1` is the custodian whose bytes are the
 * UTF-8 of `tenant-1` (`dGVuYW50LTE=`). The prefix cannot be read as base64 (`=` is only padding, at
 * the end), so the two forms never meet: `acme` stays the base64 it always was.
 */
export const NAME_PREFIX = 'name=';

const HOW_TO_WRITE =
  'write the custodian as base64 (HBase shell form, e.g. dGVuYW50LTE= for tenant-1), * for the global custodian, or by its plain name as name=tenant-1';

export function parseCustodianArg(text: string): Custodian {
  if (text.startsWith(NAME_PREFIX)) {
    const name = text.slice(NAME_PREFIX.length);
    if (name.length === 0 || !name.isWellFormed()) {
      throw new KeyledgerError(
        'ERR_INVALID_CUSTODIAN',
        `a plain custodian name is empty or not UTF-8; ${HOW_TO_WRITE}`,
        {
          custodian: text.slice(0, 64),
        },
      );
    }
    return custodianFromBytes(Buffer.from(name, 'utf8'));
  }
  try {
    return parseCustodian(text);
  } catch (error) {
    if (error instanceof KeyledgerError && error.code === 'ERR_INVALID_CUSTODIAN') {
      throw new KeyledgerError('ERR_INVALID_CUSTODIAN', `${error.message}: ${HOW_TO_WRITE}`, error.details, {
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * `<custodian>[:<namespace>]`, the namespace defaulting to `*`. The first colon separates the two
 * (neither base64 nor a name written here holds one), so a namespace may contain colons.
 */
export function parseScopeArg(text: string): KeyScope {
  const colon = text.indexOf(':');
  const custodian = parseCustodianArg(colon === -1 ? text : text.slice(0, colon));
  const namespace = parseNamespace(colon === -1 ? '*' : text.slice(colon + 1));
  return { custodian, namespace };
}

/**
 * A base64 custodian whose bytes are not printable text is most often a tenant name that happened to
 * be valid base64 (`acme` is the bytes 69 c9 9e). Answers a hint to show, or null.
 */
export function custodianHint(text: string, custodian: Custodian): string | null {
  if (text.startsWith(NAME_PREFIX) || text === '*') return null;
  const bytes = Buffer.from(custodian, 'base64');
  // Tenant names are (nearly always) ASCII: bytes that are not printable ASCII suggest a name typed as-is.
  if (/^[\x20-\x7e]+$/.test(bytes.toString('latin1'))) return null;
  return `note: custodian ${text} is base64 for the bytes ${bytes.toString('hex')}; for the tenant named ${text} write ${NAME_PREFIX}${text}`;
}

export const scopeField = z
  .string()
  .min(1)
  .describe(
    'a scope: <custodian>[:<namespace>], custodian as base64, * or name=<plain name>; namespace default *',
  );

export const custodianField = z
  .string()
  .min(1)
  .describe('a custodian: base64 (HBase shell form), * (global) or name=<plain name>');

export const keyRefField = z
  .string()
  .min(1)
  .describe('a key: its metadata hash (43 base64url characters) or its key id (32 hex digits)');

/** A key reference as given: checked for form before anything is opened. */
export type KeyRef = { readonly kind: 'metadataHash' | 'keyId'; readonly value: string };

export function parseKeyRef(text: string): KeyRef {
  if (isMetadataHash(text)) return { kind: 'metadataHash', value: text };
  if (isKeyId(text)) return { kind: 'keyId', value: text };
  throw new KeyledgerError(
    'ERR_INVALID_METADATA',
    'a key is named by its metadata hash (43 base64url characters) or its key id (32 hex digits), as show-key-status --json shows them',
    { metadataHash: text.slice(0, 64) },
  );
}

/**
 * The metadata hash of a key named either way. A key id is looked up among the scope's keys (a key
 * id names one key of the whole ledger, so it also checks the scope); unknown: ERR_KEY_NOT_FOUND.
 */
export async function metadataHashOf(ledger: Ledger, scope: KeyScope, ref: KeyRef): Promise<string> {
  if (ref.kind === 'metadataHash') return ref.value;
  const key = (await ledger.admin.getManagedKeys(scope.custodian, scope.namespace)).find(
    (k) => k.keyId === ref.value,
  );
  if (key === undefined) {
    throw new KeyledgerError(
      'ERR_KEY_NOT_FOUND',
      `key ${ref.value} not found in scope ${formatScope(scope)}`,
      { scope: formatScope(scope), keyId: ref.value },
    );
  }
  return key.metadataHash;
}
