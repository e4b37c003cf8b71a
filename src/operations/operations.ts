import type { Observable } from 'rxjs';
import { z } from 'zod';
import { KeyledgerError } from '../domain/errors.js';
import { ADMIN_OPERATIONS } from './adminOperations.js';
import { AUDIT_OPERATIONS } from './auditOperations.js';
import { CRYPTO_OPERATIONS } from './cryptoOperations.js';
import { DESTROY_OPERATIONS } from './destroyOperations.js';
import { defineOperation, type Pkcs11InitSetup } from './operation.js';
import { plain } from './plain.js';
import { POLICY_OPERATIONS } from './policyOperations.js';
import { QUERY_OPERATIONS } from './queryOperations.js';
import { REENCRYPT_OPERATIONS } from './reencryptOperations.js';
import { REWRAP_OPERATIONS } from './rewrapOperations.js';
import { TOKEN_OPERATIONS } from './tokenOperations.js';
import { whoami } from './whoamiOperation.js';

export const init = defineOperation({
  name: 'init',
  summary: 'create a dev setup (config, keystore or HSM system key, store) and record the system key',
  description:
    'Writes a config, a PKCS#12 keystore with a random system key and a password file when there is no\nconfig; records the system key as STK #1 and the store it initialised in the config. With\n--provider pkcs11 the system key is created in the PKCS#11 token instead (when absent), and the\nconfig names the module, the token and where its PIN comes from (never the PIN itself).',
  input: z.strictObject({
    provider: z
      .enum(['keystore', 'pkcs11'])
      .optional()
      .describe('where the system key lives (default keystore)'),
    module: z.string().min(1).optional().describe('pkcs11: the PKCS#11 module (library) path'),
    tokenLabel: z.string().min(1).optional().describe('pkcs11: the label of the token'),
    pinEnv: z.string().min(1).optional().describe('pkcs11: the variable holding the token PIN'),
    pinFile: z.string().min(1).optional().describe('pkcs11: a 0600 file holding the token PIN'),
    stkLabel: z.string().min(1).optional().describe('pkcs11: label prefix of the system key objects'),
  }),
  permission: 'admin',
  custodianOf: () => null,
  writes: true,
  kind: 'unary',
  opens: 'nothing',
  prepare: (input): Pkcs11InitSetup | null => {
    const { provider, module, tokenLabel, pinEnv, pinFile, stkLabel } = input;
    if (provider !== 'pkcs11') {
      const given = Object.entries({ module, tokenLabel, pinEnv, pinFile, stkLabel }).filter(
        ([, v]) => v !== undefined,
      );
      if (given.length > 0) {
        throw new KeyledgerError(
          'ERR_INVALID_ARGUMENT',
          'the module, token and PIN options are for --provider pkcs11',
          Object.fromEntries(given.map(([k, v]) => [k, v ?? null])),
        );
      }
      return null;
    }
    if (
      module === undefined ||
      tokenLabel === undefined ||
      (pinEnv === undefined) === (pinFile === undefined)
    ) {
      throw new KeyledgerError(
        'ERR_INVALID_ARGUMENT',
        '--provider pkcs11 needs --module, --token-label and one of --pin-env and --pin-file',
        {
          module: module ?? null,
          tokenLabel: tokenLabel ?? null,
          pinEnv: pinEnv ?? null,
          pinFile: pinFile ?? null,
        },
      );
    }
    return {
      module,
      tokenLabel,
      pin: pinEnv !== undefined ? { env: pinEnv } : { file: pinFile ?? '' },
      stkLabel,
    };
  },
  async run(pkcs11, host) {
    if (host.local === null) throw new TypeError('init runs locally only');
    return plain(await host.local.init(pkcs11));
  },
});

/** Every user-facing operation, in the order the usage lists them. */
export const OPERATIONS = [
  init,
  ...ADMIN_OPERATIONS,
  ...QUERY_OPERATIONS,
  ...CRYPTO_OPERATIONS,
  ...REWRAP_OPERATIONS,
  ...REENCRYPT_OPERATIONS,
  ...AUDIT_OPERATIONS,
  ...DESTROY_OPERATIONS,
  ...POLICY_OPERATIONS,
  ...TOKEN_OPERATIONS,
  whoami,
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
