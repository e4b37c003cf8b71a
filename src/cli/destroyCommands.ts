import { formatScope, parseMetadataHash, parseScope } from '../domain/identities.js';
import type { DestructionReceipt } from '../ledger/keyDestruction.js';
import type { Ledger } from '../ledger/ledger.js';
import type { OperationOptions } from '../ledger/operationOptions.js';
import { GRACE_PERIOD_FORMAT, parseGracePeriod } from './duration.js';
import { table, toJson } from './output.js';
import { arity, usageError } from './parseCommandArgs.js';

/** Lines for the CLI's usage text (commands section). */
export const DESTROY_USAGE = `  destroy-managed-key <scope> <metadata-hash> [--grace <duration>]
                                              schedule an INACTIVE or DISABLED key's destruction
                                              (crypto-shredding) after a grace period (default 7d)
  cancel-destroy <scope> <metadata-hash>      cancel a scheduled destruction that has not run
  destroy-due-keys                            destroy every key whose destruction is due: delete
                                              its wrapped material and record a receipt
  destruction-receipts <scope>                the receipts of a scope's destroyed keys`;

/** What run.ts parsed that these commands use. */
export interface DestroyArgs {
  readonly command: string;
  readonly args: readonly string[];
  readonly json: boolean;
  readonly grace: string | undefined;
  readonly operation: OperationOptions;
}

export type DestroyRunner = (ledger: Ledger, out: (text: string) => void) => Promise<void>;

const RECEIPT_HEADERS = [
  'SCOPE',
  'METADATA HASH',
  'WAS',
  'MATERIAL',
  'MATERIAL SHA-256',
  'DESTROYED',
  'ACTOR',
];

function receiptRows(receipts: readonly DestructionReceipt[]): string[][] {
  return receipts.map((r) => [
    formatScope(r),
    r.metadataHash,
    r.previousState,
    `${r.materialEvents} event${r.materialEvents === 1 ? '' : 's'}`,
    r.materialHash,
    r.destroyedAt,
    r.actor,
  ]);
}

/**
 * The crypto-shredding commands (docs/cli.md), or null when `p.command` is not one of them. Every
 * argument is checked here, before the store is opened: bad input never touches it.
 */
export function prepareDestroyCommand(p: DestroyArgs): DestroyRunner | null {
  const op = p.operation;
  switch (p.command) {
    case 'destroy-managed-key': {
      const [s = '', hash = ''] = arity(p, ['scope', 'metadata-hash']);
      const scope = parseScope(s);
      parseMetadataHash(hash);
      let graceMs: number | undefined;
      if (p.grace !== undefined) {
        const parsed = parseGracePeriod(p.grace);
        if (parsed === null) throw usageError(`--grace must be ${GRACE_PERIOD_FORMAT}`);
        graceMs = parsed;
      }
      return async (ledger, out) => {
        const r = await ledger.destruction.scheduleKeyDestruction(scope.custodian, scope.namespace, hash, {
          ...op,
          graceMs,
        });
        if (p.json) out(`${toJson({ position: r.position, dueAt: r.key.destructionDueAt, key: r.key })}\n`);
        else
          out(
            `${formatScope(scope)}: key ${hash} (${r.key.state}) will be destroyed once due at ${r.key.destructionDueAt}, ` +
              `by the next destroy-due-keys; until then: keyledger cancel-destroy ${formatScope(scope)} ${hash}\n`,
          );
      };
    }
    case 'cancel-destroy': {
      const [s = '', hash = ''] = arity(p, ['scope', 'metadata-hash']);
      const scope = parseScope(s);
      parseMetadataHash(hash);
      return async (ledger, out) => {
        const r = await ledger.destruction.cancelKeyDestruction(scope.custodian, scope.namespace, hash, op);
        if (p.json) out(`${toJson({ position: r.position, key: r.key })}\n`);
        else out(`${formatScope(scope)}: destruction of key ${hash} cancelled; it stays ${r.key.state}\n`);
      };
    }
    case 'destroy-due-keys': {
      arity(p, []);
      return async (ledger, out) => {
        const r = await ledger.destruction.destroyDueKeys(op);
        if (p.json) {
          out(`${toJson(r)}\n`);
          return;
        }
        if (r.destroyed.length === 0) out('no destruction is due\n');
        else out(table(RECEIPT_HEADERS, receiptRows(r.destroyed)));
        for (const keyId of r.leftoversDeleted) {
          out(`deleted the material left behind by destroyed key ${keyId}\n`);
        }
      };
    }
    case 'destruction-receipts': {
      const [s = ''] = arity(p, ['scope']);
      const scope = parseScope(s);
      return async (ledger, out) => {
        const receipts = await ledger.destruction.destructionReceipts(scope.custodian, scope.namespace);
        out(p.json ? `${toJson(receipts)}\n` : table(RECEIPT_HEADERS, receiptRows(receipts)));
      };
    }
    default:
      return null;
  }
}
