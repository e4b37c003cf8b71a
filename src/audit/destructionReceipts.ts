import type { StreamNames } from '../journal/streamNames.js';
import type { RecordedEvent } from '../store/eventStore.js';

/**
 * What verify needs to judge a missing material stream (docs/audit.md, "Destruction receipts"):
 * a deleted material stream is excused only by a ManagedKeyDestroyed
 *  - in the scope stream that introduced the key (KeyManagementEnabled/ManagedKeyRotated/
 *    ManagedKeySet there named it first),
 *  - covered by a checkpoint whose MAC verified (an uncovered event could be anyone's),
 *  - whose receipt names the key's own material stream and as many events as the ledger is known
 *    to have had in it (the highest revision the walk or a trusted checkpoint saw, plus one).
 * The receipt's material hash cannot be recomputed here: the events it covers are gone (it is for
 * whoever holds a backup or an export of them). A forger who knows the count still needs a
 * destruction event inside a MACed checkpoint's interval, which the chain and the checkpoint's
 * heads refuse.
 */

export type ReceiptJudgement =
  | { readonly kind: 'excused' }
  /** No destruction names the key: the stream's loss is reported as it is (truncated, deleted). */
  | { readonly kind: 'none' }
  | { readonly kind: 'mismatch'; readonly message: string };

interface Receipt {
  readonly position: bigint;
  readonly stream: string;
  readonly materialStream: string;
  readonly materialEvents: number;
}

export class DestructionReceipts {
  readonly #names: Pick<StreamNames, 'material' | 'materialKeyOf' | 'scopeOf'>;
  /** keyId → the scope stream that introduced it. */
  readonly #home = new Map<string, string>();
  /** keyId → the receipt of a destruction found in the key's own scope stream. */
  readonly #receipts = new Map<string, Receipt>();
  /** Material stream → the highest revision known to have existed. */
  readonly #known = new Map<string, bigint>();

  constructor(names: Pick<StreamNames, 'material' | 'materialKeyOf' | 'scopeOf'>) {
    this.#names = names;
  }

  /**
   * Notes an event of the walk. Returns a problem message for a destruction outside its key's
   * own scope stream (nothing genuine writes one there), else null.
   */
  note(e: RecordedEvent): string | null {
    const data = e.data as Record<string, unknown> | null;
    if (typeof data !== 'object' || data === null) return null;
    if (this.#names.materialKeyOf(e.streamName) !== null) {
      this.knowHead(e.streamName, e.revision);
      return null;
    }
    if (this.#names.scopeOf(e.streamName) === null) {
      return e.type === 'ManagedKeyDestroyed' ? 'a key destruction outside any scope stream' : null;
    }
    const key = data.key as { keyId?: unknown } | undefined;
    if (typeof key?.keyId === 'string' && !this.#home.has(key.keyId)) this.#home.set(key.keyId, e.streamName);
    if (e.type !== 'ManagedKeyDestroyed') return null;
    const keyId = data.keyId;
    const receipt = data.receipt as Record<string, unknown> | undefined;
    if (typeof keyId !== 'string' || typeof receipt !== 'object' || receipt === null) return null;
    if (this.#home.get(keyId) !== e.streamName) {
      return `it destroys key ${keyId}, which this scope stream never introduced`;
    }
    this.#receipts.set(keyId, {
      position: e.position,
      stream: e.streamName,
      materialStream: String(receipt.materialStream),
      materialEvents: Number(receipt.materialEvents),
    });
    return null;
  }

  /** A trusted checkpoint recorded `stream` at `revision`. */
  knowHead(stream: string, revision: bigint): void {
    const known = this.#known.get(stream);
    if (known === undefined || revision > known) this.#known.set(stream, revision);
  }

  /** Whether the loss of `keyId`'s material stream is excused; `covered`: the trusted coverage. */
  judge(keyId: string, stream: string, covered: bigint | null): ReceiptJudgement {
    const receipt = this.#receipts.get(keyId);
    if (receipt === undefined) return { kind: 'none' };
    const where = `the destruction receipt at position ${receipt.position}`;
    if (
      receipt.materialStream !== this.#names.material(keyId as never) ||
      stream !== receipt.materialStream
    ) {
      return { kind: 'mismatch', message: `${where} names ${receipt.materialStream}, not this stream` };
    }
    if (covered === null || receipt.position > covered) {
      return {
        kind: 'mismatch',
        message: `${where} is not covered by a verified checkpoint, so it cannot excuse the missing material`,
      };
    }
    const known = this.#known.get(stream);
    const count = known === undefined ? 0 : Number(known) + 1;
    if (receipt.materialEvents !== count) {
      return {
        kind: 'mismatch',
        message: `${where} counts ${receipt.materialEvents} material events; the ledger knew ${count}`,
      };
    }
    return { kind: 'excused' };
  }
}
