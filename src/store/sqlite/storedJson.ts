import { EventSchemaError } from '../../domain/errors.js';
import type { JsonObject } from '../eventStore.js';

/**
 * Nesting a stored event may have. The ledger's own events nest a few levels; every reader of the
 * store (the hash chain's canonical JSON, the schemas) recurses once per level, so a row edited to
 * nest tens of thousands of levels would overflow the stack as a RangeError instead of being
 * reported as the bad event it is.
 */
export const MAX_STORED_DEPTH = 1000;

/**
 * A stored event's `data` or `metadata` column as the JSON object it must be, or an
 * ERR_EVENT_SCHEMA naming the event: text that is not JSON, JSON that is not an object, or an
 * object nested deeper than MAX_STORED_DEPTH (found in the sqlite file, never written by a ledger).
 */
export function parseStoredObject(
  text: string,
  event: { readonly stream: string; readonly revision: bigint; readonly type: string },
  column: 'data' | 'metadata',
): JsonObject {
  const fail = (problem: string, cause?: unknown) =>
    new EventSchemaError(event.stream, event.revision, event.type, `${column}: ${problem}`, { cause });
  // Nesting d takes at least 2d characters: short texts (nearly every event) skip the scan.
  if (text.length > 2 * MAX_STORED_DEPTH && nestingOf(text) > MAX_STORED_DEPTH) {
    throw fail(`nested deeper than ${MAX_STORED_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw fail('not JSON', error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('not a JSON object');
  return value as JsonObject;
}

/** The deepest bracket nesting of JSON text, brackets inside strings not counted. */
function nestingOf(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}
