/**
 * Results as plain JSON data: what a library caller can `JSON.stringify`, and what the CLI's `--json`
 * and the HTTP API send. A bigint (a position, a revision) becomes its decimal string, a Date its ISO
 * 8601 text; a Map, a Set or bytes are refused (TypeError): a result must not carry them.
 */
export type Plain<T> = T extends string | number | boolean | null | undefined
  ? T
  : T extends bigint
    ? string
    : T extends Date
      ? string
      : T extends readonly (infer U)[]
        ? Plain<U>[]
        : T extends object
          ? { -readonly [K in keyof T]: Plain<T[K]> }
          : never;

export function plain<T>(value: T): Plain<T> {
  return convert(value, '') as Plain<T>;
}

function convert(value: unknown, path: string): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'function' || typeof value === 'symbol') {
      throw new TypeError(`${path || 'result'} is a ${typeof value}, not plain data`);
    }
    return value;
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v, i) => convert(v, `${path}[${i}]`));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(
      `${path || 'result'} is a ${value.constructor?.name ?? 'class instance'}, not plain data`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = convert(v, path === '' ? k : `${path}.${k}`);
  }
  return out;
}
