import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import { GLOBAL_NAMESPACE, type KeyScope, keyScope } from '../domain/identities.js';

/**
 * The providers' key metadata: HBase's JSON `{"KeyAlias", "KeyCustodian", "KeyNamespace"}`
 * (missing namespace means `*`); generated keys carry `KeyGenerated` instead of an alias.
 * Providers emit it in one canonical form, because the ledger names keys by its hash.
 */
const metadataSchema = z
  .object({
    KeyAlias: z.string().min(1).max(1024).optional(),
    KeyGenerated: z
      .string()
      .regex(/^[A-Za-z0-9_-]{22}$/)
      .optional(),
    KeyCustodian: z.string().min(1),
    KeyNamespace: z.string().min(1).optional(),
  })
  .refine((m) => (m.KeyAlias === undefined) !== (m.KeyGenerated === undefined), {
    message: 'exactly one of KeyAlias and KeyGenerated',
  });

export type KeyMetadata =
  | { readonly kind: 'alias'; readonly alias: string; readonly scope: KeyScope }
  | { readonly kind: 'generated'; readonly id: string; readonly scope: KeyScope };

export function parseKeyMetadata(metadata: string): KeyMetadata {
  let json: unknown;
  try {
    json = JSON.parse(metadata);
  } catch (error) {
    throw new KeyledgerError('ERR_INVALID_METADATA', 'key metadata is not JSON', {}, { cause: error });
  }
  const parsed = metadataSchema.safeParse(json);
  if (!parsed.success) {
    throw new KeyledgerError('ERR_INVALID_METADATA', `key metadata: ${z.prettifyError(parsed.error)}`, {});
  }
  const m = parsed.data;
  let scope: KeyScope;
  try {
    scope = keyScope(m.KeyCustodian, m.KeyNamespace ?? GLOBAL_NAMESPACE);
  } catch (error) {
    throw new KeyledgerError(
      'ERR_INVALID_METADATA',
      `key metadata names no valid scope: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
  if (m.KeyAlias !== undefined) return { kind: 'alias', alias: m.KeyAlias.toLowerCase(), scope };
  return { kind: 'generated', id: m.KeyGenerated ?? '', scope };
}

export function formatKeyMetadata(metadata: KeyMetadata): string {
  const { custodian, namespace } = metadata.scope;
  return metadata.kind === 'alias'
    ? JSON.stringify({ KeyAlias: metadata.alias, KeyCustodian: custodian, KeyNamespace: namespace })
    : JSON.stringify({ KeyGenerated: metadata.id, KeyCustodian: custodian, KeyNamespace: namespace });
}

/** System keys are named by their alias alone. */
export function formatSystemKeyMetadata(alias: string): string {
  return JSON.stringify({ KeyAlias: alias });
}

export function parseSystemKeyMetadata(metadata: string): string {
  let json: unknown;
  try {
    json = JSON.parse(metadata);
  } catch (error) {
    throw new KeyledgerError('ERR_INVALID_METADATA', 'system key metadata is not JSON', {}, { cause: error });
  }
  const parsed = z.strictObject({ KeyAlias: z.string().min(1) }).safeParse(json);
  if (!parsed.success)
    throw new KeyledgerError('ERR_INVALID_METADATA', 'system key metadata has no KeyAlias', {});
  return parsed.data.KeyAlias.toLowerCase();
}
