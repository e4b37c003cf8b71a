import { KeyledgerError } from '../domain/errors.js';
import { type StreamNames, streamNames } from '../journal/streamNames.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';
import { auditFileEvents, auditFileSource, readAuditHeader } from './auditFile.js';
import { providerMacKeys, recordedSystemKeys } from './checkpointMacKeys.js';
import type { LedgerVerifyOptions } from './ledgerIntegrity.js';
import { verifyLedger } from './verifyLedger.js';
import type { VerifyReport } from './verifyReport.js';

export interface VerifyAuditFileOptions extends LedgerVerifyOptions {
  /**
   * The provider holding the ledger's system keys, to check checkpoint MACs. Without one the file
   * is checked for consistency only (report.macs 'skipped'): anyone could have rebuilt a consistent
   * file, so only a checked MAC shows it is the ledger's.
   */
  readonly provider?: ManagedKeyProvider;
  /** The ledger's checkpoint interval (its `checkpointEvery`; default 1000): bounds the uncovered tail. */
  readonly checkpointEvery?: number;
  /** The ledger's rollback anchor file (LedgerOptions.anchorFile), compared automatically. */
  readonly anchorFile?: string;
}

/**
 * verify, offline, on a file `audit export` wrote: the same checks as on the ledger, with MACs
 * checked by the provider against the system keys the file records (a key the provider holds
 * under another identity is never used). The provider stays the caller's to close.
 */
export async function verifyAuditFile(
  path: string,
  options: VerifyAuditFileOptions = {},
): Promise<VerifyReport> {
  const header = await readAuditHeader(path);
  let names: StreamNames;
  try {
    names = streamNames(header.prefix);
  } catch (error) {
    throw new KeyledgerError(
      'ERR_AUDIT_FILE_INVALID',
      `${path}:1: the header names an invalid prefix`,
      { path },
      { cause: error },
    );
  }
  const keys =
    options.provider === undefined
      ? null
      : providerMacKeys(options.provider, await recordedSystemKeys(auditFileEvents(path), names.system));
  return verifyLedger(auditFileSource(path, header, names.checkpoints), {
    keys,
    names,
    anchor: options.anchor,
    checkpointEvery: options.checkpointEvery,
    anchorFile: options.anchorFile,
  });
}
