import type { StreamNames } from '../journal/streamNames.js';
import type { RecordedEvent } from '../store/eventStore.js';
import { DestructionReceipts } from './destructionReceipts.js';
import type { ProblemLog } from './problemLog.js';
import type { VerifyProblem } from './verifyProblem.js';

/** Problems that vanish if the stream turns out to be a destroyed key's material. */
interface Conditional {
  readonly problem: VerifyProblem;
  readonly keyId: string;
}

/**
 * Verify's view of the material streams: a missing part of one is a problem unless a destruction
 * receipt excuses it, and that is known only once the walk has seen the receipts and the coverage.
 */
export class MaterialStreamChecks {
  readonly #problems: ProblemLog;
  readonly #names: Pick<StreamNames, 'material' | 'materialKeyOf' | 'scopeOf'>;
  readonly #receipts: DestructionReceipts;
  readonly #conditional: Conditional[] = [];

  constructor(problems: ProblemLog, names: Pick<StreamNames, 'material' | 'materialKeyOf' | 'scopeOf'>) {
    this.#problems = problems;
    this.#names = names;
    this.#receipts = new DestructionReceipts(names);
  }

  /** Notes an event of the walk; a destruction where nothing genuine writes one is its message. */
  note(e: RecordedEvent): string | null {
    return this.#receipts.note(e);
  }

  /** A trusted checkpoint recorded `stream` at `revision`. */
  knowHead(stream: string, revision: bigint): void {
    this.#receipts.knowHead(stream, revision);
  }

  /** Reports the problem now, or for a material stream once its receipts are known (`judge`). */
  unlessDestroyed(problem: VerifyProblem): void {
    const keyId = this.#names.materialKeyOf(problem.stream);
    if (keyId !== null) {
      this.#conditional.push({ problem, keyId });
    } else {
      this.#problems.push(problem);
    }
  }

  /** Judges the deferred problems against the receipts; answers how many streams were excused. */
  judge(coveredPosition: bigint | null): number {
    const destroyedStreams = new Set<string>();
    for (const { problem, keyId } of this.#conditional) {
      const judged = this.#receipts.judge(keyId, problem.stream, coveredPosition);
      if (judged.kind === 'excused') destroyedStreams.add(problem.stream);
      else if (judged.kind === 'none') this.#problems.push(problem);
      else this.#problems.push({ ...problem, kind: 'receipt-mismatch', message: judged.message });
    }
    return destroyedStreams.size;
  }
}
