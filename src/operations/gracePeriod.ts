import { MAX_DESTROY_GRACE_MS } from '../domain/decideDestroy.js';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DURATION = /^(\d{1,10})([smhdw])$/;

/** How a bad duration is explained (the CLI and the config file say the same). */
export const GRACE_PERIOD_FORMAT =
  'a duration like 7d, 36h, 90m or 0s: a whole number and one unit of s, m, h, d or w, at most 10 years';

/**
 * A grace period as the CLI and the config file write it: a whole number and one unit, `s`, `m`,
 * `h`, `d` or `w` (`0s`, `90m`, `36h`, `7d`, `2w`), from 0 to 10 years. Returns milliseconds, or
 * null when the text is not such a duration (the caller names the option or field in its error).
 */
export function parseGracePeriod(text: string): number | null {
  const match = DURATION.exec(text);
  if (match === null) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return ms <= MAX_DESTROY_GRACE_MS ? ms : null;
}
