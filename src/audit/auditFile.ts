import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { KeyledgerError } from '../domain/errors.js';
import type { JsonObject, RecordedEvent } from '../store/eventStore.js';
import { AUDIT_EXPORT_FORMAT, AUDIT_EXPORT_VERSION } from './auditExport.js';
import type { VerifyProblem } from './verifyProblem.js';
import type { VerifySource } from './verifySource.js';

/** An audit export file read back: header, events, trailer (docs/formats.md, "Audit export"). */

export interface AuditFileHeader {
  readonly prefix: string;
  readonly exportedAt: string;
  readonly headPosition: bigint;
}

const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

function invalid(path: string, line: number, problem: string): KeyledgerError {
  return new KeyledgerError('ERR_AUDIT_FILE_INVALID', `${path}:${line}: ${problem}`, { path, line });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type Line =
  | { readonly kind: 'event'; readonly event: RecordedEvent }
  | { readonly kind: 'trailer'; readonly events: number; readonly lastPosition: bigint };

/** The file's lines after the header, parsed; one pass per call, in constant memory. */
async function* lines(path: string): AsyncGenerator<Line> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const reader = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let number = 0;
  try {
    for await (const text of reader) {
      number++;
      if (number === 1) continue;
      yield parseLine(path, number, text);
    }
  } catch (error) {
    if (error instanceof KeyledgerError) throw error;
    throw new KeyledgerError('ERR_AUDIT_FILE_INVALID', `${path}: cannot be read`, { path }, { cause: error });
  } finally {
    reader.close();
    input.destroy();
  }
}

function parseLine(path: string, number: number, text: string): Line {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(path, number, 'not a JSON line');
  }
  if (!isObject(value)) throw invalid(path, number, 'not a JSON object');
  if (value.end === true) {
    if (
      typeof value.events !== 'number' ||
      typeof value.lastPosition !== 'string' ||
      !DECIMAL.test(value.lastPosition)
    ) {
      throw invalid(path, number, 'a malformed trailer');
    }
    return { kind: 'trailer', events: value.events, lastPosition: BigInt(value.lastPosition) };
  }
  const { stream, revision, position, eventId, type, data, metadata, recordedAt } = value;
  if (
    typeof stream !== 'string' ||
    typeof revision !== 'string' ||
    !DECIMAL.test(revision) ||
    typeof position !== 'string' ||
    !DECIMAL.test(position) ||
    typeof eventId !== 'string' ||
    typeof type !== 'string' ||
    !isObject(data) ||
    !isObject(metadata) ||
    typeof recordedAt !== 'string' ||
    Number.isNaN(Date.parse(recordedAt))
  ) {
    throw invalid(
      path,
      number,
      'not an event line (stream, revision, position, eventId, type, data, metadata, recordedAt)',
    );
  }
  return {
    kind: 'event',
    event: {
      streamName: stream,
      revision: BigInt(revision),
      position: BigInt(position),
      eventId,
      type,
      data: data as JsonObject,
      metadata: metadata as JsonObject,
      recordedAt: new Date(recordedAt),
    },
  };
}

/** Reads and checks the first line; ERR_AUDIT_FILE_INVALID if the file is not an audit export. */
export async function readAuditHeader(path: string): Promise<AuditFileHeader> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const reader = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let first: string | undefined;
  try {
    for await (const text of reader) {
      first = text;
      break;
    }
  } catch (error) {
    throw new KeyledgerError('ERR_AUDIT_FILE_INVALID', `${path}: cannot be read`, { path }, { cause: error });
  } finally {
    reader.close();
    input.destroy();
  }
  let header: unknown;
  try {
    header = first === undefined ? undefined : JSON.parse(first);
  } catch {
    header = undefined;
  }
  if (
    !isObject(header) ||
    header.format !== AUDIT_EXPORT_FORMAT ||
    typeof header.prefix !== 'string' ||
    typeof header.exportedAt !== 'string' ||
    typeof header.headPosition !== 'string' ||
    !DECIMAL.test(header.headPosition)
  ) {
    throw invalid(
      path,
      1,
      `not a keyledger audit export (its first line must be the ${AUDIT_EXPORT_FORMAT} header)`,
    );
  }
  if (header.version !== AUDIT_EXPORT_VERSION) {
    throw invalid(
      path,
      1,
      `export format version ${String(header.version)}; this keyledger reads version ${AUDIT_EXPORT_VERSION}`,
    );
  }
  return { prefix: header.prefix, exportedAt: header.exportedAt, headPosition: BigInt(header.headPosition) };
}

/**
 * The file as verify reads a ledger. A file without its trailer, or whose trailer counts other
 * events than it holds, was cut: verify reports that as `truncated` after the last event read.
 */
export function auditFileSource(
  path: string,
  header: AuditFileHeader,
  checkpointStream: string,
): VerifySource {
  let seen = 0;
  let lastPosition = 0n;
  let trailer: { events: number; lastPosition: bigint } | null = null;
  return {
    prefix: header.prefix,
    headPosition: header.headPosition,
    async *events() {
      let number = 1;
      for await (const line of lines(path)) {
        number++;
        if (trailer !== null) throw invalid(path, number, 'a line after the trailer');
        if (line.kind === 'trailer') {
          trailer = { events: line.events, lastPosition: line.lastPosition };
          continue;
        }
        seen++;
        lastPosition = line.event.position;
        yield line.event;
      }
    },
    async *checkpoints() {
      for await (const line of lines(path)) {
        if (line.kind === 'event' && line.event.streamName === checkpointStream) yield line.event;
      }
    },
    finish(): VerifyProblem | null {
      const t = trailer as { events: number; lastPosition: bigint } | null;
      if (t !== null && t.events === seen && t.lastPosition === lastPosition) return null;
      return {
        kind: 'truncated',
        position: lastPosition,
        stream: '',
        revision: null,
        message:
          t === null
            ? `the file ends after position ${lastPosition} without its trailer line: it was cut`
            : `the trailer counts ${t.events} events up to position ${t.lastPosition}; the file holds ${seen} up to ${lastPosition}`,
      };
    },
  };
}

/** The file's events (one more pass), for reading the system keys it records. */
export async function* auditFileEvents(path: string): AsyncGenerator<RecordedEvent> {
  for await (const line of lines(path)) if (line.kind === 'event') yield line.event;
}
