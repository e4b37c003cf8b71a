/**
 * The reliability suites run short inside `npm test` (a few seconds each) and in full under
 * `npm run test:reliability`, which sets KEYLEDGER_RELIABILITY=full. Every count or duration a suite
 * scales goes through `scaled`, so the two runs differ only in size, never in what they check.
 */
export const RELIABILITY_FULL = process.env.KEYLEDGER_RELIABILITY === 'full';

export function scaled(short: number, full: number): number {
  return RELIABILITY_FULL ? full : short;
}

/** A per-test timeout for node:test that grows with the run (the runner's default is 120 s). */
export function scaledTimeout(shortMs: number, fullMs: number): number {
  return scaled(shortMs, fullMs);
}
