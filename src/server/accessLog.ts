/** One line of the access log: who did what, with which outcome. Never headers, bodies or query strings. */
export interface AccessLogEntry {
  readonly time: string;
  readonly requestId: string;
  readonly method: string;
  /** The route's path without the query string (a query may carry associated data). */
  readonly path: string;
  readonly principal: string | null;
  readonly operation: string | null;
  readonly custodian: string | null;
  readonly scope: string | null;
  readonly status: number;
  readonly code: string | null;
  readonly durationMs: number;
}

export type AccessLog = (entry: AccessLogEntry) => void;

/**
 * JSON lines handed to `write` in batches: the lines of one event-loop turn go out as one write
 * after it (setImmediate), not one write (on Linux a synchronous system call for a pipe or file)
 * per request; a turn's lines are also written at process exit if the turn never ended.
 */
export function batchedJsonLines(write: (text: string) => void): AccessLog {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    write(text);
  };
  let hooked = false;
  return (entry) => {
    if (pending.length === 0) {
      setImmediate(flush);
      if (!hooked) {
        hooked = true;
        process.once('exit', flush);
      }
    }
    pending.push(`${JSON.stringify({ level: 'info', msg: 'request', ...entry })}\n`);
  };
}

/** JSON lines on stderr (stdout carries `listening <url>` only), batched per event-loop turn. */
export const stderrAccessLog: AccessLog = batchedJsonLines((text) => {
  process.stderr.write(text);
});
