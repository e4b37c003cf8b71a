/**
 * The peak `rss` of this process while some work runs: sampled on a timer (and on demand), since
 * the peak of a streamed run is what shows whether memory grows with the data. `before` is the rss
 * when sampling started, so a bench can report growth rather than the process's whole footprint.
 */
export class RssSampler {
  readonly before: number;
  #peak = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.before = process.memoryUsage.rss();
    this.#peak = this.before;
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.#peak) this.#peak = rss;
  }

  stop(): { before: number; peak: number } {
    clearInterval(this.#timer);
    this.sample();
    return { before: this.before, peak: this.#peak };
  }
}
