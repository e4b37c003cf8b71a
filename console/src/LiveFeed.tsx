import type { LiveState } from './liveEvents.js';
import type { FeedEvent } from './model.js';
import { formatTime, plainName } from './names.js';

/** The latest events of the feed, newest first. */
export function LiveFeed({
  events,
  state,
  detail,
}: {
  events: readonly FeedEvent[];
  state: LiveState;
  detail: string | null;
}) {
  return (
    <aside class="card feed" aria-labelledby="feed-title">
      <h2 id="feed-title">
        Live <span class={`live-dot live-${state}`} aria-hidden="true" />
        <span class="muted small live-state">
          {state === 'live'
            ? 'connected'
            : state === 'off'
              ? `off${detail === null ? '' : ` (${detail})`}`
              : `${state}…`}
        </span>
      </h2>
      {events.length === 0 ? (
        <p class="muted small">Events appear here as they happen, from any process.</p>
      ) : (
        <ol class="feed-list" aria-live="polite">
          {events.map((e) => {
            const custodian = typeof e.data.custodian === 'string' ? e.data.custodian : null;
            const namespace = typeof e.data.namespace === 'string' ? e.data.namespace : null;
            return (
              <li key={e.position} data-position={e.position}>
                <span class="feed-type">{e.type}</span>
                <span class="muted small">
                  #{e.position} · {formatTime(e.meta.occurredAt ?? null).slice(11)}
                  {custodian !== null &&
                    ` · ${plainName(custodian) ?? custodian}${namespace === null ? '' : `:${namespace}`}`}
                  {e.meta.actor !== undefined && ` · ${e.meta.actor}`}
                </span>
                {e.meta.reason != null && <span class="feed-reason">“{e.meta.reason}”</span>}
              </li>
            );
          })}
        </ol>
      )}
    </aside>
  );
}
