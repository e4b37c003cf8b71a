import { useState } from 'preact/hooks';
import type { HistoryEntry } from './model.js';
import { formatTime, shortHash } from './names.js';
import { StatePatterns } from './StateBadge.js';

interface Segment {
  readonly start: number;
  end: number | null;
  readonly state: string;
}

interface Lane {
  readonly id: string;
  readonly label: string;
  readonly title: string;
  readonly segments: Segment[];
  readonly marks: number[];
}

/**
 * One lane per key (and one for the scope's marker), built from the history: a key's state holds
 * from the event that set it to the next that changed it. The x axis is one column per event, so a
 * burst of events stays readable next to a quiet year; each mark is focusable and shows the event.
 */
export function buildLanes(entries: readonly HistoryEntry[]): Lane[] {
  const marker: Lane = {
    id: 'marker',
    label: 'scope marker',
    title: 'the scope’s marker',
    segments: [],
    marks: [],
  };
  const lanes = new Map<string, Lane>();
  entries.forEach((entry, i) => {
    const touched = new Set<Lane>();
    if (entry.marker !== null) {
      close(marker, i);
      if (entry.marker.to !== null) marker.segments.push({ start: i, end: null, state: entry.marker.to });
      touched.add(marker);
    }
    for (const k of entry.keys) {
      let lane = lanes.get(k.metadataHash);
      if (lane === undefined) {
        lane = {
          id: k.metadataHash,
          label: shortHash(k.metadataHash),
          title: `key ${k.metadataHash}${k.keyId === null ? '' : ` (id ${k.keyId})`}`,
          segments: [],
          marks: [],
        };
        lanes.set(k.metadataHash, lane);
      }
      close(lane, i);
      lane.segments.push({ start: i, end: null, state: k.to });
      touched.add(lane);
    }
    if (touched.size === 0) {
      const subject = entry.subject === null ? undefined : lanes.get(entry.subject.metadataHash);
      touched.add(subject ?? marker);
    }
    for (const lane of touched) lane.marks.push(i);
  });
  return [marker, ...lanes.values()];
}

function close(lane: Lane, at: number): void {
  const last = lane.segments[lane.segments.length - 1];
  if (last !== undefined && last.end === null) last.end = at;
}

const WIDTH = 960;
const LABEL = 150;
const LANE = 30;
const TOP = 26;

export function Timeline({ entries, cut }: { entries: readonly HistoryEntry[]; cut: number | null }) {
  const [focus, setFocus] = useState<{ lane: string; index: number } | null>(null);
  const lanes = buildLanes(entries);
  const columns = Math.max(entries.length, 1);
  const col = (WIDTH - LABEL - 16) / (columns + 0.6);
  const x = (i: number) => LABEL + (i + 0.5) * col;
  const end = WIDTH - 8;
  const height = TOP + lanes.length * LANE + 8;
  const focused = focus === null ? undefined : entries[focus.index];
  const focusLane = lanes.findIndex((l) => l.id === focus?.lane);
  const ticks = entries
    .map((e, i) => ({ i, e }))
    .filter(({ i }) => columns <= 12 || i % Math.ceil(columns / 12) === 0);
  return (
    <figure class="timeline">
      <figcaption class="sr-only">
        Timeline: {lanes.length - 1} key lane(s), {entries.length} event(s); focus a mark for its event
      </figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${height}`} class="timeline-svg">
        <title>Key states over time, one column per event</title>
        <StatePatterns />
        {ticks.map(({ i, e }) => (
          <g key={`t${i}`} class="tick">
            <line x1={x(i)} x2={x(i)} y1={TOP - 6} y2={height - 4} />
            <text x={x(i)} y={12} text-anchor="middle">
              #{e.position} {formatTime(e.occurredAt).slice(11, 19)}
            </text>
          </g>
        ))}
        {lanes.map((lane, row) => {
          const y = TOP + row * LANE;
          return (
            <g key={lane.id} class="lane" data-lane={lane.id}>
              <title>{lane.title}</title>
              <text
                x={8}
                y={y + LANE / 2 + 4}
                class={lane.id === 'marker' ? 'lane-label marker' : 'lane-label'}
              >
                {lane.label}
              </text>
              <rect x={LABEL} y={y + 3} width={end - LABEL} height={LANE - 6} class="lane-bg" rx={3} />
              {lane.segments.map((s) => {
                const x1 = x(s.start);
                const x2 = s.end === null ? end : x(s.end);
                return (
                  <g key={`${s.start}`} class={`segment state-${s.state}`} data-state={s.state}>
                    <rect
                      x={x1}
                      y={y + 5}
                      width={Math.max(2, x2 - x1)}
                      height={LANE - 10}
                      fill={`url(#fill-${s.state})`}
                      rx={2}
                    />
                    {x2 - x1 > 70 && (
                      <text x={x1 + 8} y={y + LANE / 2 + 4} class="segment-label">
                        {s.state}
                      </text>
                    )}
                  </g>
                );
              })}
              {lane.marks.map((i) => {
                const entry = entries[i];
                if (entry === undefined) return null;
                const label = `${entry.type} at position ${entry.position}, ${formatTime(entry.occurredAt)}, by ${entry.actor}${entry.reason === null ? '' : `: ${entry.reason}`}`;
                return (
                  // biome-ignore lint/a11y/useSemanticElements: an SVG mark cannot be a <button>; it is focusable and labelled
                  <circle
                    key={`m${i}`}
                    class="mark"
                    cx={x(i)}
                    cy={y + LANE / 2}
                    r={6}
                    tabIndex={0}
                    role="button"
                    aria-label={label}
                    data-position={entry.position}
                    onFocus={() => setFocus({ lane: lane.id, index: i })}
                    onBlur={() => setFocus(null)}
                    onMouseEnter={() => setFocus({ lane: lane.id, index: i })}
                    onMouseLeave={() => setFocus(null)}
                  />
                );
              })}
            </g>
          );
        })}
        {cut !== null && cut < entries.length - 1 && (
          <g class="cut">
            <rect x={x(cut) + col / 2} y={TOP - 6} width={end - x(cut) - col / 2} height={height - TOP + 2} />
            <text x={x(cut) + col / 2 + 6} y={TOP + 8}>
              after the as-of point
            </text>
          </g>
        )}
      </svg>
      {focused !== undefined && focus !== null && (
        <div
          class="tip"
          role="status"
          style={{
            // Beside the mark (left of it near the right edge), centred on its lane.
            ...(x(focus.index) < WIDTH - 340
              ? { left: `${((x(focus.index) + 14) / WIDTH) * 100}%` }
              : { right: `${((WIDTH - x(focus.index) + 14) / WIDTH) * 100}%` }),
            top: `${((TOP + (focusLane + 0.5) * LANE) / height) * 100}%`,
          }}
        >
          <strong>{focused.type}</strong>
          <dl>
            <dt>position</dt>
            <dd>{focused.position}</dd>
            <dt>time</dt>
            <dd>{formatTime(focused.occurredAt)}</dd>
            <dt>actor</dt>
            <dd>{focused.actor}</dd>
            <dt>reason</dt>
            <dd>{focused.reason ?? '–'}</dd>
          </dl>
        </div>
      )}
    </figure>
  );
}
