/**
 * The unary ratios measured in short interleaved rounds (service bench, fifth session): the bare route,
 * then each route, then the bare route again, … so every route's slot sits between two bare slots a
 * few seconds apart. A route's ratio in a round is its requests/s ÷ the mean of the bare slots just
 * before and just after it: what the single long before/after pair measures, but with the bare
 * route's drift (it moved by up to 1.6× between the halves of one run on the idle machine) a few
 * seconds wide instead of a minute. The median over the rounds is the figure; the range says how much
 * one round can be trusted.
 */
import type { LoadResult } from './httpLoad.js';

export interface RoundSlot {
  readonly requestsPerSecond: number;
  /** Server CPU per answered request, µs. */
  readonly cpuMicros: number;
}

export interface RoundRoute<K extends string> {
  readonly key: K;
  /** One slot of load on the route (a few seconds, no warm-up). */
  readonly measure: () => Promise<LoadResult & RoundSlot>;
}

export interface RoundFigures {
  /** route ÷ bare, requests/s, one per round. */
  readonly ratios: readonly number[];
  /** bare's server CPU ÷ the route's, one per round. */
  readonly cpuRatios: readonly number[];
  /** The route's server CPU per request, one per round. */
  readonly cpuMicros: readonly number[];
}

/**
 * `rounds` rounds of [bare, route 1, bare, route 2, …]: every route slot between two bare slots (the
 * last bare slot of a round is the first of the next). Answers each route's per-round figures and the
 * bare slots' requests/s.
 */
export async function ratioRounds<K extends string>(
  rounds: number,
  bare: () => Promise<LoadResult & RoundSlot>,
  routes: readonly RoundRoute<K>[],
): Promise<{ readonly figures: Record<K, RoundFigures>; readonly bare: readonly number[] }> {
  const figures = {} as Record<K, { ratios: number[]; cpuRatios: number[]; cpuMicros: number[] }>;
  for (const route of routes) figures[route.key] = { ratios: [], cpuRatios: [], cpuMicros: [] };
  const bareRates: number[] = [];
  let before = await bare();
  bareRates.push(before.requestsPerSecond);
  for (let round = 0; round < rounds; round++) {
    for (const route of routes) {
      const measured = await route.measure();
      const after = await bare();
      bareRates.push(after.requestsPerSecond);
      const bareRate = (before.requestsPerSecond + after.requestsPerSecond) / 2;
      const bareCpu = (before.cpuMicros + after.cpuMicros) / 2;
      const into = figures[route.key];
      into.ratios.push(measured.requestsPerSecond / bareRate);
      into.cpuRatios.push(bareCpu / measured.cpuMicros);
      into.cpuMicros.push(measured.cpuMicros);
      before = after;
    }
  }
  return { figures, bare: bareRates };
}
