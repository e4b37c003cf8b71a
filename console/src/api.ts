/**
 * The console's one way to the server: the public /v1 API, same origin, the bearer token in a
 * header (never in a URL). A problem document (RFC 9457) becomes an ApiError with its code.
 */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}

export interface CallOptions {
  /** Recorded as the reason of the events the call writes (Keyledger-Reason). */
  readonly reason?: string;
}

export class Api {
  constructor(private readonly token: string) {}

  async call<T>(operation: string, input: object = {}, options: CallOptions = {}): Promise<T> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (options.reason !== undefined) headers['keyledger-reason'] = options.reason;
    let response: Response;
    try {
      response = await fetch(`/v1/${operation}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(input),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch {
      throw new ApiError('ERR_SERVER_UNAVAILABLE', 'the server cannot be reached', 0, {});
    }
    if (!response.ok) throw await problemOf(response);
    return (await response.json()) as T;
  }

  /** The events feed as a fetch (EventSource cannot send the Authorization header). */
  events(query: string, lastEventId: string | null, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      accept: 'text/event-stream',
    };
    if (lastEventId !== null) headers['last-event-id'] = lastEventId;
    return fetch(`/v1/events${query}`, { headers, signal, cache: 'no-store', credentials: 'omit' });
  }
}

export async function problemOf(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as {
      code?: unknown;
      title?: unknown;
      details?: Record<string, unknown>;
    };
    return new ApiError(
      typeof body.code === 'string' ? body.code : 'ERR_INTERNAL',
      typeof body.title === 'string' ? body.title : `HTTP ${response.status}`,
      response.status,
      body.details ?? {},
    );
  } catch {
    return new ApiError('ERR_INTERNAL', `HTTP ${response.status}`, response.status, {});
  }
}

/** A reason as the Keyledger-Reason header carries it: printable ASCII, at most 1024 characters. */
export function reasonProblem(reason: string): string | null {
  if (reason.trim().length === 0) return 'A reason is required: it is recorded in the event.';
  if (reason.length > 1024) return 'At most 1024 characters.';
  if (!/^[\x20-\x7e]+$/.test(reason))
    return 'Use printable ASCII characters only (it travels as an HTTP header).';
  return null;
}
