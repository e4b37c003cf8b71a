import type { ProblemKind, ProblemSite, VerifyProblem } from './verifyProblem.js';

/** The problems one verify pass finds, in the order it finds them; every check writes here. */
export class ProblemLog {
  readonly #problems: VerifyProblem[] = [];

  add(kind: ProblemKind, at: ProblemSite, message: string): void {
    this.#problems.push({ kind, position: at.position, stream: at.stream, revision: at.revision, message });
  }

  push(problem: VerifyProblem): void {
    this.#problems.push(problem);
  }

  /** By position; stable, so problems found at one position keep the order they were found in. */
  byPosition(): VerifyProblem[] {
    return [...this.#problems].sort((a, b) =>
      a.position < b.position ? -1 : a.position > b.position ? 1 : 0,
    );
  }
}
