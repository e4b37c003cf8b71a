const UNITS = [
  ['w', 604_800_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
] as const;

/** A policy duration as `--period` takes it: the largest unit that divides it (`90d`, `36h`, `1500ms`). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of UNITS) if (ms % size === 0 && ms >= size) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** An age for people: its two largest units (`41d 3h`, `5m 2s`), days rather than weeks. */
export function formatAge(ms: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(ms));
  for (const [unit, size] of UNITS) {
    if (unit === 'w') continue;
    if (rest >= size || (parts.length > 0 && parts.length < 2)) {
      if (parts.length === 2) break;
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.length === 0 ? '0s' : parts.join(' ');
}
