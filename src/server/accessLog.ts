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

/** JSON lines on stderr (stdout carries `listening <url>` only). */
export const stderrAccessLog: AccessLog = (entry) => {
  process.stderr.write(`${JSON.stringify({ level: 'info', msg: 'request', ...entry })}\n`);
};
