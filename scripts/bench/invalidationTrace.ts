/**
 * What ran inside the invalidation bench's windows (BENCH_INVALIDATION_TRACE=1): a sampling CPU
 * profile of the measured rotations (node:inspector, 50 µs), each sample placed in the rotation
 * window (commit → last subscriber applied) it fell in. For the slowest windows it prints the
 * rotation, the scope's key count, the window, the GC pause in it and where the samples were:
 * by the innermost frame of keyledger's own code (src/…) and by the innermost frame of all.
 *
 * A sample's time is the profile's start plus its deltas (µs on V8's monotonic clock); the windows
 * are in `process.hrtime` (the same clock on Linux). `calibrate` checks that by sampling a busy
 * loop at a known hrtime: the report says how many of its samples fell inside it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface TracedWindow {
  /** Measured rotation index (0-based). */
  readonly rotation: number;
  /** Keys of the rotated scope after the rotation. */
  readonly keys: number;
  /** hrtime (ns) of the commit and of the last subscriber's apply. */
  readonly from: bigint;
  readonly to: bigint;
  /** GC pauses (ms) overlapping the window (attachGc). */
  gcMs: number;
  /**
   * Per thread of this process, from just before the rotation's admin call to just after every
   * subscriber applied (a span a little wider than the window): ms on a CPU, ms runnable but
   * waiting for one (the kernel's schedstat).
   */
  threads?: ThreadDelta[];
}

export interface ThreadDelta {
  readonly name: string;
  readonly main: boolean;
  readonly runMs: number;
  readonly waitMs: number;
}

interface ThreadStat {
  readonly name: string;
  readonly run: number;
  readonly wait: number;
}

const names = new Map<string, string>();

/**
 * Every thread of this process: ns on a CPU and ns waiting on a run queue so far
 * (/proc/self/task/<tid>/schedstat, Linux; empty elsewhere).
 */
export function threadStats(): Map<string, ThreadStat> {
  const out = new Map<string, ThreadStat>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      let name = names.get(tid);
      if (name === undefined) {
        name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
        names.set(tid, name);
      }
      const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      out.set(tid, { name, run: run ?? 0, wait: wait ?? 0 });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** What each thread did between two threadStats(). */
export function threadDeltas(before: Map<string, ThreadStat>, after: Map<string, ThreadStat>): ThreadDelta[] {
  const out: ThreadDelta[] = [];
  for (const [tid, b] of after) {
    const a = before.get(tid) ?? { name: b.name, run: 0, wait: 0 };
    out.push({
      name: b.name,
      main: tid === String(process.pid),
      runMs: (b.run - a.run) / 1e6,
      waitMs: (b.wait - a.wait) / 1e6,
    });
  }
  return out;
}

const SAMPLING_US = 50;
const MARKER_MS = 3;

/** A busy loop under a name of its own, to find in the profile. */
function traceClockMarker(ms: number): void {
  const end = process.hrtime.bigint() + BigInt(ms * 1e6);
  while (process.hrtime.bigint() < end) {
    // busy
  }
}

function frameName(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(src|scripts|node_modules)\//, '$1/');
  return `${frame.functionName || '(anonymous)'} ${file}${file ? `:${frame.lineNumber + 1}` : ''}`;
}

function describeThreads(deltas: readonly ThreadDelta[]): string {
  const main = deltas.find((d) => d.main);
  const others = deltas.filter((d) => !d.main && (d.runMs > 0.01 || d.waitMs > 0.01));
  const byName = new Map<string, { run: number; wait: number; n: number }>();
  for (const d of others) {
    const known = byName.get(d.name) ?? { run: 0, wait: 0, n: 0 };
    byName.set(d.name, { run: known.run + d.runMs, wait: known.wait + d.waitMs, n: known.n + 1 });
  }
  const rest = [...byName.entries()]
    .map(([name, t]) => `${name}×${t.n} on CPU ${t.run.toFixed(2)} ms, waiting ${t.wait.toFixed(2)} ms`)
    .join('; ');
  return `main on CPU ${main?.runMs.toFixed(2) ?? '?'} ms, waiting ${main?.waitMs.toFixed(2) ?? '?'} ms${rest ? `; ${rest}` : ''}`;
}

export class WindowTracer {
  readonly #session = new Session();
  readonly #profile: boolean;
  readonly windows: TracedWindow[] = [];
  #marker: { from: bigint; to: bigint } | null = null;

  /** `profile`: sample the main thread's stacks too (without: the threads' figures only). */
  constructor(options: { readonly profile: boolean }) {
    this.#profile = options.profile;
  }

  async start(): Promise<void> {
    if (!this.#profile) return;
    this.#session.connect();
    await this.#session.post('Profiler.enable');
    await this.#session.post('Profiler.setSamplingInterval', { interval: SAMPLING_US });
    await this.#session.post('Profiler.start');
    const from = process.hrtime.bigint();
    traceClockMarker(MARKER_MS);
    this.#marker = { from, to: process.hrtime.bigint() };
  }

  add(window: TracedWindow): void {
    this.windows.push(window);
  }

  /** Sets each window's gcMs from the GC entries (performance.now() time) that overlap it. */
  attachGc(gcs: readonly { readonly startTime: number; readonly duration: number }[]): void {
    // performance.now() minus hrtime, in ms, taken at one instant (to within a microsecond or so).
    const offset = performance.now() - Number(process.hrtime.bigint()) / 1e6;
    for (const win of this.windows) {
      const from = Number(win.from) / 1e6 + offset;
      const to = Number(win.to) / 1e6 + offset;
      win.gcMs = gcs.reduce(
        (sum, g) => sum + Math.max(0, Math.min(to, g.startTime + g.duration) - Math.max(from, g.startTime)),
        0,
      );
    }
  }

  /** Stops the profile; the report's lines (the slowest `top` windows, and every window's totals). */
  async stop(top = 12): Promise<string[]> {
    const empty: Profile = { nodes: [], startTime: 0, samples: [], timeDeltas: [] };
    let profile = empty;
    if (this.#profile) {
      profile = ((await this.#session.post('Profiler.stop')) as unknown as { profile: Profile }).profile;
      await this.#session.post('Profiler.disable');
      this.#session.disconnect();
    }
    const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    /** Innermost frame of keyledger's own code (src/), or the category V8 gives the sample. */
    const ownFrame = (id: number): string => {
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const frame = byId.get(at)?.callFrame;
        if (frame === undefined) break;
        if (frame.url.includes('/src/')) return frameName(frame);
      }
      return frameName(byId.get(id)?.callFrame ?? { functionName: '?', url: '', lineNumber: -1 });
    };
    const leaf = (id: number) =>
      frameName(byId.get(id)?.callFrame ?? { functionName: '?', url: '', lineNumber: -1 });
    // Sample times in hrtime ns.
    const times: bigint[] = [];
    let t = profile.startTime;
    for (const d of profile.timeDeltas) {
      t += d;
      times.push(BigInt(Math.round(t)) * 1000n);
    }
    const lines: string[] = [];
    if (this.#marker !== null) {
      const { from, to } = this.#marker;
      let inside = 0;
      let named = 0;
      profile.samples.forEach((id, i) => {
        const at = times[i] as bigint;
        if (leaf(id).startsWith('traceClockMarker') || ownFrame(id).startsWith('traceClockMarker')) {
          named++;
          if (at >= from && at <= to) inside++;
        }
      });
      lines.push(
        `clock check: ${inside} of ${named} samples of the ${MARKER_MS} ms marker fall inside its hrtime span (sampling ${SAMPLING_US} µs)`,
      );
    }
    const sorted = [...this.windows].sort((a, b) => (a.from < b.from ? -1 : 1));
    const perWindow = new Map<TracedWindow, number[]>();
    let w = 0;
    profile.samples.forEach((id, i) => {
      const at = times[i] as bigint;
      while (w < sorted.length && (sorted[w] as TracedWindow).to < at) w++;
      const win = sorted[w];
      if (win === undefined || at < win.from) return;
      const list = perWindow.get(win) ?? [];
      if (list.length === 0) perWindow.set(win, list);
      list.push(id);
    });
    const ms = (win: TracedWindow) => Number(win.to - win.from) / 1e6;
    const slowest = [...this.windows].sort((a, b) => ms(b) - ms(a)).slice(0, top);
    const count = (ids: readonly number[], name: (id: number) => string) => {
      const counts = new Map<string, number>();
      for (const id of ids) counts.set(name(id), (counts.get(name(id)) ?? 0) + 1);
      return [...counts.entries()].sort((a, b) => b[1] - a[1]);
    };
    const fmt = (entries: [string, number][], n: number) =>
      entries
        .slice(0, n)
        .map(([k, c]) => `${c}× ${k}`)
        .join('; ');
    for (const win of slowest) {
      const ids = perWindow.get(win) ?? [];
      lines.push(
        `rotation ${win.rotation} (${win.keys} keys): window ${ms(win).toFixed(2)} ms, GC in it ${win.gcMs.toFixed(2)} ms, ${ids.length} samples`,
      );
      if (this.#profile)
        lines.push(
          `    own code: ${fmt(count(ids, ownFrame), 4)}`,
          `    leaf:     ${fmt(count(ids, leaf), 4)}`,
        );
      if (win.threads !== undefined) lines.push(`    threads:  ${describeThreads(win.threads)}`);
    }
    const spans = this.windows.filter((win) => win.threads !== undefined);
    if (spans.length > 0) {
      const sum = (pick: (d: ThreadDelta) => number, main: boolean) =>
        spans.reduce(
          (total, win) =>
            total + (win.threads ?? []).filter((d) => d.main === main).reduce((t, d) => t + pick(d), 0),
          0,
        ) / spans.length;
      const slow = spans.filter((win) => ms(win) >= 0.5);
      const mainOf = (win: TracedWindow) => (win.threads ?? []).find((d) => d.main);
      const waited = slow.filter((win) => (mainOf(win)?.waitMs ?? 0) >= 0.25);
      const others = (win: TracedWindow) =>
        (win.threads ?? []).filter((d) => !d.main).reduce((t, d) => t + d.runMs, 0);
      const busy = waited.filter((win) => others(win) >= (mainOf(win)?.waitMs ?? 0) * 0.8);
      lines.push(
        `windows ≥ 0.5 ms: ${slow.length} of ${spans.length}; in ${waited.length} of them the main thread waited ≥ 0.25 ms for a CPU, and in ${busy.length} of those this process's other threads ran at least 0.8× that long`,
      );
      lines.push(
        `every span, mean: main thread on CPU ${sum((d) => d.runMs, true).toFixed(3)} ms, waiting ${sum((d) => d.waitMs, true).toFixed(3)} ms; other threads on CPU ${sum((d) => d.runMs, false).toFixed(3)} ms`,
      );
    }
    // Whether the window grows with the scope's key count: the median window per fifth of the run.
    const fifth = Math.ceil(this.windows.length / 5);
    const medians: string[] = [];
    for (let k = 0; k < this.windows.length; k += fifth) {
      const part = this.windows.slice(k, k + fifth);
      const sortedMs = part.map(ms).sort((a, b) => a - b);
      const keys = part.map((win) => win.keys);
      medians.push(
        `${Math.min(...keys)}–${Math.max(...keys)} keys: ${((sortedMs[Math.floor(sortedMs.length / 2)] ?? 0) * 1000).toFixed(0)} µs`,
      );
    }
    lines.push(`median window by the rotated scope's key count: ${medians.join('; ')}`);
    const all = this.windows.flatMap((win) => perWindow.get(win) ?? []);
    lines.push(`every window (${all.length} samples), own code: ${fmt(count(all, ownFrame), 8)}`);
    lines.push(`every window, leaf: ${fmt(count(all, leaf), 8)}`);
    return lines;
  }
}
