/**
 * JSON as stored: events and snapshots are plain JSON documents. Declared in the domain (the
 * bottom layer) so that projections can say what their snapshots are without importing a store.
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [k: string]: JsonValue };
export type JsonObject = { readonly [k: string]: JsonValue };
