/**
 * The canonical JSON text of a value, as RFC 8785 (JCS) defines it for the values a ledger event
 * holds: object members sorted by their names' UTF-16 code units, no whitespace, strings and
 * numbers written as ECMAScript's JSON.stringify writes them. Two documents that JSON-parse to the
 * same value get the same text, whatever their key order or spacing, which is what an event hash
 * needs: the store may give data back with its members in another order.
 *
 * An object member whose value is `undefined` is left out, as JSON.stringify (and so the store)
 * leaves it out. Anything the store could not give back as it was (a non-finite number, a bigint,
 * a function, `undefined` in an array) is a TypeError: hashing it would commit to a value that
 * is never stored.
 */
export function canonicalJson(value: unknown): string {
  // Built by concatenation: V8 joins such strings lazily, which verify's throughput depends on.
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON: a number must be finite');
      return JSON.stringify(value);
    case 'object':
      if (value === null) return 'null';
      return Array.isArray(value) ? arrayText(value) : objectText(value as Record<string, unknown>);
    default:
      // undefined (in an array or at the top), bigint, function, symbol.
      throw new TypeError(`canonical JSON: a ${typeof value} is not JSON`);
  }
}

function arrayText(values: readonly unknown[]): string {
  let text = '[';
  for (let i = 0; i < values.length; i++)
    text += i === 0 ? canonicalJson(values[i]) : `,${canonicalJson(values[i])}`;
  return `${text}]`;
}

function objectText(value: Record<string, unknown>): string {
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    throw new TypeError('canonical JSON: only plain objects are JSON objects');
  }
  // Array.prototype.sort compares UTF-16 code units, the order RFC 8785 prescribes.
  const names = Object.keys(value).sort();
  let text = '{';
  for (const name of names) {
    const member = value[name];
    if (member === undefined) continue;
    text += `${text.length === 1 ? '' : ','}${memberName(name)}${canonicalJson(member)}`;
  }
  return `${text}}`;
}

/** Ledger JSON uses few member names; their encodings are kept (up to a bound, for hostile input). */
const NAMES = new Map<string, string>();
const MAX_NAMES = 4096;

function memberName(name: string): string {
  let encoded = NAMES.get(name);
  if (encoded === undefined) {
    encoded = `${JSON.stringify(name)}:`;
    if (NAMES.size < MAX_NAMES) NAMES.set(name, encoded);
  }
  return encoded;
}
