import type { ClientRequest, IncomingMessage } from 'node:http';
import { Observable } from 'rxjs';
import type { KeyledgerError } from '../domain/errors.js';
import type { HttpTransport } from './httpTransport.js';
import { serverUnavailable } from './problemError.js';
import { SseParser } from './sseParser.js';

export interface RemoteEventsOptions {
  /** Query parameters of GET /v1/events (the watch filter; arrays comma-separated). */
  readonly query: URLSearchParams;
  /** Consecutive failed reconnects before giving up with ERR_SERVER_UNAVAILABLE. */
  readonly maxReconnects: number;
  /** A stream silent this long (not even a heartbeat) counts as dropped. */
  readonly idleMs: number;
}

const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;

/**
 * GET /v1/events as an Observable of the parsed `data` of each event. Subscribing connects;
 * unsubscribing closes. A dropped connection (reset, the server gone, silence past `idleMs`) is
 * reopened with `Last-Event-ID` set to the last id seen, so the server resumes strictly after it:
 * no gap, no duplicate. Before any event was seen there is no id to resume from and the original
 * filter is sent again (from: now may then miss events written while disconnected).
 * A refusal (a problem with a 4xx status) ends the Observable with its error; so does a first
 * connection that fails, or `maxReconnects` failed reconnects in a row.
 */
export function remoteEvents(transport: HttpTransport, options: RemoteEventsOptions): Observable<unknown> {
  return new Observable<unknown>((subscriber) => {
    let closed = false;
    let connected = false;
    let failures = 0;
    let lastId: string | undefined;
    let response: IncomingMessage | null = null;
    let timer: NodeJS.Timeout | null = null;
    const abort = new AbortController();

    const fail = (error: KeyledgerError) => {
      if (closed) return;
      closed = true;
      response?.destroy();
      abort.abort();
      subscriber.error(error);
    };

    const retry = (error: KeyledgerError) => {
      if (closed) return;
      response?.destroy();
      response = null;
      if (!connected || failures >= options.maxReconnects) return fail(error);
      const wait = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** failures);
      failures++;
      timer = setTimeout(connect, wait);
    };

    const connect = () => {
      timer = null;
      if (closed) return;
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastId !== undefined) headers['last-event-id'] = lastId;
      transport
        .request({
          method: 'GET',
          path: '/v1/events',
          query: options.query,
          headers,
          idleMs: options.idleMs,
          signal: abort.signal,
        })
        .then(async (res) => {
          if (closed) return res.destroy();
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            const error = await transport.expectOk(res).then(
              () => serverUnavailable(transport.url, `http-${status}`),
              (e: KeyledgerError) => e,
            );
            // The server refused the request itself: asking again changes nothing.
            if (status >= 400 && status < 500) return fail(error);
            return retry(error);
          }
          response = res;
          connected = true;
          read(res);
        })
        .catch((error: unknown) => retry(transport.unavailable(error)));
    };

    const read = (res: IncomingMessage) => {
      const parser = new SseParser(lastId);
      let dropped = false;
      // 'error' and 'close' may both come: one reconnect per connection.
      const drop = (error: KeyledgerError) => {
        if (dropped) return;
        dropped = true;
        retry(error);
      };
      res.on('data', (chunk: Buffer) => {
        if (closed) return;
        failures = 0; // bytes moved (events or heartbeats): the connection works
        for (const event of parser.push(chunk)) {
          lastId = event.id;
          let item: unknown;
          try {
            item = JSON.parse(event.data);
          } catch (error) {
            return fail(serverUnavailable(transport.url, 'invalid-event', error));
          }
          subscriber.next(item);
          if (closed) return;
        }
      });
      // The socket's idle timeout destroys the request; the response then ends or errors.
      res.on('error', (error) => drop(transport.unavailable(error)));
      res.on('close', () => drop(serverUnavailable(transport.url, 'stream-ended')));
      const request = (res as IncomingMessage & { req?: ClientRequest }).req;
      request?.on('error', (error) => drop(transport.unavailable(error)));
    };

    connect();
    return () => {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      response?.destroy();
      abort.abort();
    };
  });
}
