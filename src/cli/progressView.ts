import type { Progress } from '../operations/operation.js';
import type { CliIo } from './output.js';

const BAR_WIDTH = 30;

/** A progress bar redrawn in place on a terminal; one plain line per checkpoint otherwise. */
export class ProgressView {
  readonly #io: CliIo;
  #drawn = false;

  constructor(io: CliIo) {
    this.#io = io;
  }

  update(report: Progress): void {
    if (report.task === 'rotate-due-keys') {
      this.#due(report.done, report.total);
      return;
    }
    const c = report;
    const total = Math.max(c.keys, c.done);
    const fraction = total === 0 ? 1 : c.done / total;
    const percent = Math.floor(fraction * 100);
    if (this.#io.isTty) {
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
      // The one place control characters are written on purpose: \r and erase-line redraw the bar.
      this.#io.stdout(`\r\x1b[2Krewrap [${bar}] ${String(percent).padStart(3)}% ${c.done}/${total} keys`);
      this.#drawn = true;
    } else {
      this.#io.stdout(
        `rewrap ${c.campaignId}: ${c.done}/${total} keys (${percent}%), ${c.rewrapped} re-wrapped, ${c.skipped} skipped\n`,
      );
    }
  }

  /** rotate-due-keys: a bar on a terminal only; its result lists every action anyway. */
  #due(done: number, total: number): void {
    if (!this.#io.isTty) return;
    const fraction = total === 0 ? 1 : done / total;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
    this.#io.stdout(
      `\r\x1b[2Krotate-due-keys [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${done}/${total}`,
    );
    this.#drawn = true;
  }

  end(): void {
    if (this.#drawn) this.#io.stdout('\n');
    this.#drawn = false;
  }
}
