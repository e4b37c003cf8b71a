import type { Readable, Writable } from 'node:stream';

/** Where the CLI writes; tests and the demo pass their own. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** True when stdout is a terminal (tables get a little more decoration). */
  readonly isTty: boolean;
  /** Binary standard input and output, for encrypt/decrypt (default: the process's own). */
  readonly stdin?: Readable;
  readonly stdoutStream?: Writable;
}

// C0 controls but the newline, DEL, and C1 controls (U+009B is a one-character CSI on some terminals).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text for a terminal with every control character but the newline escaped (`\x1b` for ESC), so a
 * value read from the ledger (a namespace, a reason) cannot clear the screen, move the cursor or
 * print a line that was never written (docs/cli.md, "Output").
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** One value inside text output: newlines escaped too, so it cannot start a line of its own. */
export function escapeValue(text: string): string {
  return escapeControl(text).replaceAll('\n', '\\n');
}

/**
 * JSON as the CLI prints it: bigints as strings, and the control characters JSON.stringify leaves
 * as they are (DEL and the C1 range) escaped as \u sequences, which any JSON reader reads back.
 */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
    indent,
  ).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A plain aligned table: readable on a terminal, still greppable in a pipe. Cells are escaped. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '(none)\n';
  const cells = rows.map((r) => r.map(escapeValue));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (row: readonly string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')}\n`;
}
