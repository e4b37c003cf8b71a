import { StringDecoder } from 'node:string_decoder';

/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseEvent {
  /** The `id:` of this event, or of the last event that had one (what Last-Event-ID resumes from). */
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/**
 * Parses an event stream as its chunks arrive: lines end in LF, CRLF or CR (a CR at a chunk's end
 * waits for the next chunk), a blank line dispatches, `:` lines are comments (heartbeats), UTF-8 is
 * decoded across chunk boundaries. Unknown fields are ignored, as the standard says.
 */
export class SseParser {
  readonly #decoder = new StringDecoder('utf8');
  #buffer = '';
  #id: string | undefined;
  #event = '';
  #data: string[] = [];
  #hasData = false;

  constructor(lastEventId?: string) {
    this.#id = lastEventId;
  }

  /** The events completed by this chunk. */
  push(chunk: Buffer | string): SseEvent[] {
    this.#buffer += typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\n|\r/.exec(this.#buffer);
      if (match === null) break;
      // A CR last in the buffer may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      const event = this.#line(line);
      if (event !== null) events.push(event);
    }
    return events;
  }

  get lastEventId(): string | undefined {
    return this.#id;
  }

  #line(line: string): SseEvent | null {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.#data.push(value);
        this.#hasData = true;
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.#id = value;
        break;
      default:
        break;
    }
    return null;
  }

  #dispatch(): SseEvent | null {
    const event = this.#hasData
      ? { id: this.#id, event: this.#event || 'message', data: this.#data.join('\n') }
      : null;
    this.#event = '';
    this.#data = [];
    this.#hasData = false;
    return event;
  }
}
