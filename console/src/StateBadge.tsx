import type { KeyState } from './model.js';

/** A state as text with its colour and pattern (the pattern keeps it distinguishable without colour). */
export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

/** The SVG patterns of the timeline lanes, one per state; referenced as `url(#fill-<STATE>)`. */
export function StatePatterns() {
  return (
    <defs>
      <pattern id="fill-ACTIVE" width="8" height="8" patternUnits="userSpaceOnUse">
        <rect width="8" height="8" class="fill-ACTIVE" />
      </pattern>
      <pattern
        id="fill-INACTIVE"
        width="8"
        height="8"
        patternUnits="userSpaceOnUse"
        patternTransform="rotate(45)"
      >
        <rect width="8" height="8" class="fill-INACTIVE" />
        <rect width="3" height="8" class="stripe" />
      </pattern>
      <pattern id="fill-DISABLED" width="8" height="8" patternUnits="userSpaceOnUse">
        <rect width="8" height="8" class="fill-DISABLED" />
        <circle cx="4" cy="4" r="1.6" class="stripe" />
      </pattern>
      <pattern id="fill-FAILED" width="8" height="8" patternUnits="userSpaceOnUse">
        <rect width="8" height="8" class="fill-FAILED" />
        <path d="M0 0L8 8M8 0L0 8" class="hatch" />
      </pattern>
      <pattern id="fill-DESTROYED" width="6" height="6" patternUnits="userSpaceOnUse">
        <rect width="6" height="6" class="fill-DESTROYED" />
        <rect y="0" width="6" height="2" class="stripe" />
      </pattern>
    </defs>
  );
}

export const STATE_HELP: Readonly<Record<KeyState, string>> = {
  ACTIVE: 'solid',
  INACTIVE: 'diagonal stripes',
  DISABLED: 'dots',
  FAILED: 'crosses',
  DESTROYED: 'horizontal bars',
};
