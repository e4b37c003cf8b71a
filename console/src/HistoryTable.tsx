import type { HistoryEntry } from './model.js';
import { formatTime, shortHash } from './names.js';

function change(e: HistoryEntry): string {
  return [
    ...(e.marker === null ? [] : [`marker ${e.marker.from ?? '–'} → ${e.marker.to ?? '–'}`]),
    ...e.keys.map((k) => `${shortHash(k.metadataHash)} ${k.from ?? 'new'} → ${k.to}`),
    ...(e.keys.length === 0 && e.marker === null && e.subject !== null
      ? [`${shortHash(e.subject.metadataHash)}`]
      : []),
  ].join('; ');
}

export function HistoryTable({ entries, cut }: { entries: readonly HistoryEntry[]; cut: number | null }) {
  return (
    <div class="table-wrap">
      <table class="history">
        <caption class="sr-only">Every event of the scope, oldest first</caption>
        <thead>
          <tr>
            <th scope="col" class="num">
              Position
            </th>
            <th scope="col">Time</th>
            <th scope="col">Event</th>
            <th scope="col">Change</th>
            <th scope="col">Actor</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e, i) => (
            <tr
              key={e.position}
              data-position={e.position}
              class={cut !== null && i > cut ? 'after-cut' : ''}
            >
              <td class="num">{e.position}</td>
              <td class="nowrap">{formatTime(e.occurredAt)}</td>
              <td>{e.type}</td>
              <td>{change(e)}</td>
              <td class="actor">{e.actor}</td>
              <td class="reason">{e.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
