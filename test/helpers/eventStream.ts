import type { ClientRequest, IncomingMessage } from 'node:http';
import { request } from 'node:https';

export interface SseEvent {
  readonly id: string;
  readonly event: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read events field by field
  readonly data: any;
}

/** A server-sent event stream as a test reads it: the events, the comments, and a way to stop. */
export interface EventStreamClient {
  readonly status: number;
  readonly response: IncomingMessage;
  readonly events: SseEvent[];
  readonly comments: string[];
  /** Resolves once `predicate` holds (checked on every event and comment), or rejects after `ms`. */
  until(predicate: () => boolean, ms?: number): Promise<void>;
  /** The whole body when the status was not 200. */
  readonly body: Promise<string>;
  close(): void;
}

export function openEventStream(
  url: string,
  options: { ca: Buffer; token: string; lastEventId?: string },
): Promise<EventStreamClient> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${options.token}`,
      accept: 'text/event-stream',
    };
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
    let req: ClientRequest | null = null;
    req = request(url, { ca: options.ca, headers, agent: false }, (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters = new Set<() => void>();
      let buffer = '';
      let raw = '';
      const body = new Promise<string>((done) => res.on('end', () => done(raw)));
      res.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        raw += text;
        buffer += text;
        let end = buffer.indexOf('\n\n');
        while (end !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) comments.push(block.slice(1).trim());
          else {
            const field = (name: string) =>
              block
                .split('\n')
                .find((l) => l.startsWith(`${name}: `))
                ?.slice(name.length + 2) ?? '';
            events.push({ id: field('id'), event: field('event'), data: JSON.parse(field('data')) });
          }
          end = buffer.indexOf('\n\n');
        }
        for (const wake of waiters) wake();
      });
      res.on('error', () => {});
      resolve({
        status: res.statusCode ?? 0,
        response: res,
        events,
        comments,
        body,
        until: (predicate, ms = 5000) =>
          new Promise<void>((done, fail) => {
            if (predicate()) return done();
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(
                new Error(
                  `timed out; events ${events.map((e) => e.id).join(',')}, comments ${comments.length}`,
                ),
              );
            }, ms);
            const check = () => {
              if (!predicate()) return;
              clearTimeout(timer);
              waiters.delete(check);
              done();
            };
            waiters.add(check);
          }),
        close: () => {
          req?.destroy();
          res.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}
