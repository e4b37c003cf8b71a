import type { Observable } from 'rxjs';
import { z } from 'zod';
import { ADMIN_OPERATIONS } from './adminOperations.js';
import { AUDIT_OPERATIONS } from './auditOperations.js';
import { CRYPTO_OPERATIONS } from './cryptoOperations.js';
import { DESTROY_OPERATIONS } from './destroyOperations.js';
import { defineOperation } from './operation.js';
import { plain } from './plain.js';
import { QUERY_OPERATIONS } from './queryOperations.js';
import { REWRAP_OPERATIONS } from './rewrapOperations.js';
import { TOKEN_OPERATIONS } from './tokenOperations.js';

export const init = defineOperation({
  name: 'init',
  summary: 'create a dev setup (config, keystore, store) and record the system key',
  description:
    'Writes a config, a PKCS#12 keystore with a random system key and a password file when there is no\nconfig; records the system key as STK #1 and the store it initialised in the config.',
  input: z.strictObject({}),
  permission: 'admin',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'nothing',
  prepare: () => null,
  async run(_p, host) {
    if (host.local === null) throw new TypeError('init runs locally only');
    return plain(await host.local.init());
  },
});

/** Every user-facing operation, in the order the usage lists them. */
export const OPERATIONS = [
  init,
  ...ADMIN_OPERATIONS,
  ...QUERY_OPERATIONS,
  ...CRYPTO_OPERATIONS,
  ...REWRAP_OPERATIONS,
  ...AUDIT_OPERATIONS,
  ...DESTROY_OPERATIONS,
  ...TOKEN_OPERATIONS,
] as const;

export type AnyOperation = (typeof OPERATIONS)[number];
export type OperationName = AnyOperation['name'];
export type OperationOf<N extends OperationName> = Extract<AnyOperation, { readonly name: N }>;
/** What an operation answers (resolved; for `events` operations, one event). */
export type OutputOf<N extends OperationName> =
  ReturnType<OperationOf<N>['run']> extends Observable<infer O>
    ? O
    : Awaited<ReturnType<OperationOf<N>['run']>>;

export function operationNamed(name: string): AnyOperation | undefined {
  return OPERATIONS.find((o) => o.name === name);
}
