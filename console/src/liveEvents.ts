import type { Api } from './api.js';
import type { FeedEvent } from './model.js';

export type LiveState = 'connecting' | 'live' | 'retrying' | 'off';

export interface LiveHandlers {
  /** The stream is open: from now on nothing written is missed. */
  onOpen(): void;
  onEvent(event: FeedEvent): void;
  onState(state: LiveState, detail?: string): void;
}

/**
 * The events feed (GET /v1/events) read with fetch and parsed here: EventSource cannot send the
 * bearer token. A dropped stream is reopened with Last-Event-ID, which the server resumes strictly
 * after (no gap, no duplicate); a refusal (401, 403) ends it.
 */
export function followEvents(api: Api, handlers: LiveHandlers): () => void {
  const abort = new AbortController();
  let lastId: string | null = null;
  let failures = 0;

  const run = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      handlers.onState(failures === 0 ? 'connecting' : 'retrying');
      try {
        const response = await api.events(lastId === null ? '?from=now' : '', lastId, abort.signal);
        if (response.status === 401 || response.status === 403) {
          handlers.onState('off', response.status === 403 ? 'no audit grant' : 'signed out');
          return;
        }
        if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
        await readStream(response.body, (event) => {
          failures = 0;
          if (event.kind === 'open') {
            handlers.onState('live');
            handlers.onOpen();
            return;
          }
          lastId = event.id ?? lastId;
          try {
            handlers.onEvent(JSON.parse(event.data) as FeedEvent);
          } catch {
            // A line that is not JSON is skipped; the stream goes on.
          }
        });
      } catch {
        if (abort.signal.aborted) return;
      }
      failures += 1;
      handlers.onState('retrying');
      await sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)), abort.signal);
    }
  };
  void run();
  return () => abort.abort();
}

type Parsed = { kind: 'open' } | { kind: 'event'; id: string | undefined; data: string };

/** Server-sent events (the WHATWG format): blocks separated by a blank line; comments start with `:`. */
async function readStream(body: ReadableStream<Uint8Array>, emit: (event: Parsed) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let opened = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let end = blockEnd(buffer); end !== null; end = blockEnd(buffer)) {
      const block = buffer.slice(0, end.at);
      buffer = buffer.slice(end.at + end.length);
      if (!opened) {
        // The server opens every stream with a comment (`: connected`): the subscription is live.
        opened = true;
        emit({ kind: 'open' });
      }
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split(/\r\n|\r|\n/)) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = text;
        else if (field === 'data') data.push(text);
      }
      if (data.length > 0) emit({ kind: 'event', id, data: data.join('\n') });
    }
  }
}

function blockEnd(buffer: string): { at: number; length: number } | null {
  const match = /\r\n\r\n|\n\n|\r\r/.exec(buffer);
  return match === null ? null : { at: match.index, length: match[0].length };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
