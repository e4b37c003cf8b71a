import type { Writable } from 'node:stream';
import type { OperationContext } from '../journal/eventFactory.js';
import type { StreamNames } from '../journal/streamNames.js';
import type { EventStore, RecordedEvent } from '../store/eventStore.js';
import { type AuditExportSummary, exportAudit } from './auditExport.js';
import type { ChainingEventStore } from './chainingEventStore.js';
import { Checkpointer, type CheckpointResult, DEFAULT_CHECKPOINT_EVERY } from './checkpointer.js';
import { type SystemKeySource, systemKeyMacKeys } from './checkpointMacKeys.js';
import { SNAPSHOT_MAC_LABEL } from './snapshotSeal.js';
import { verifyLedger } from './verifyLedger.js';
import type { VerifyReport } from './verifyReport.js';
import { verifySnapshots } from './verifySnapshots.js';
import type { VerifySource } from './verifySource.js';

export interface LedgerVerifyOptions {
  /** A checkpoint kept from an earlier report (its revision and hash) that must still be there. */
  readonly anchor?: { readonly revision: bigint; readonly hash: string };
}

export interface LedgerIntegrityDeps {
  readonly store: ChainingEventStore;
  readonly names: StreamNames;
  readonly systemKeys: SystemKeySource;
  readonly now: () => Date;
  /** Default DEFAULT_CHECKPOINT_EVERY; 0 turns automatic checkpoints off. */
  readonly checkpointEvery?: number;
  /** The context automatic checkpoints are recorded with. */
  readonly automaticContext: () => OperationContext;
  /** The rollback anchor file: every checkpoint is appended to it, and verify compares with it. */
  readonly anchorFile?: string;
}

async function* upTo(events: AsyncIterable<RecordedEvent>, head: bigint): AsyncGenerator<RecordedEvent> {
  for await (const event of events) {
    if (event.position > head) return;
    yield event;
  }
}

/** The store as verify reads it, fixed at its head when verify starts. */
export async function storeVerifySource(store: EventStore, names: StreamNames): Promise<VerifySource> {
  const headPosition = await store.headPosition();
  return {
    prefix: names.prefix,
    headPosition,
    events: () => upTo(store.readAll({ streamPrefix: names.prefix }), headPosition),
    checkpoints: () => upTo(store.readAll({ streamPrefix: names.checkpoints }), headPosition),
  };
}

/** A ledger's tamper evidence: checkpoints (automatic and on request), verify, and export. */
export class LedgerIntegrity {
  readonly #d: LedgerIntegrityDeps;
  readonly #checkpointer: Checkpointer;

  constructor(deps: LedgerIntegrityDeps) {
    this.#d = deps;
    this.#checkpointer = new Checkpointer({
      store: deps.store,
      names: deps.names,
      keys: systemKeyMacKeys(deps.systemKeys),
      now: deps.now,
      every: deps.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY,
      automaticContext: deps.automaticContext,
      anchorFile: deps.anchorFile,
    });
    deps.store.onAppended(this.#checkpointer.afterAppend);
    deps.store.useCheckpointMark(this.#checkpointer.markFor);
  }

  checkpoint(context: OperationContext): Promise<CheckpointResult | null> {
    return this.#checkpointer.checkpoint(context);
  }

  async verify(options: LedgerVerifyOptions = {}): Promise<VerifyReport> {
    const store = this.#d.store.inner;
    const source = await storeVerifySource(store, this.#d.names);
    return verifyLedger(source, {
      keys: systemKeyMacKeys(this.#d.systemKeys),
      names: this.#d.names,
      anchor: options.anchor,
      anchorFile: this.#d.anchorFile,
      checkpointEvery: this.#d.checkpointEvery,
      snapshots: () =>
        verifySnapshots(
          store,
          this.#d.names.prefix,
          systemKeyMacKeys(this.#d.systemKeys, SNAPSHOT_MAC_LABEL),
          source.headPosition,
        ),
    });
  }

  export(out: Writable): Promise<AuditExportSummary> {
    return exportAudit(this.#d.store.inner, this.#d.names.prefix, out, this.#d.now());
  }

  /** Stops automatic checkpoints (the ledger is closing). */
  close(): void {
    this.#d.store.onAppended(null);
    this.#d.store.useCheckpointMark(null);
  }
}
