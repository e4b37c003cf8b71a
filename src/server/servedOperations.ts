import { type AnyOperation, OPERATIONS } from '../operations/operations.js';

/**
 * The operations that work on the caller's local files: `init` writes a setup, `verify-export`
 * reads a file and `audit-export-file` writes one. A server has no caller's files, so these have no
 * route (404); `audit-export` streams the same export to the caller instead.
 */
export const LOCAL_OPERATIONS: ReadonlySet<string> = new Set(['init', 'verify-export', 'audit-export-file']);

/** The operations the API serves, by kind (routes, OpenAPI document). */
export function servedOperations(): readonly AnyOperation[] {
  return OPERATIONS.filter((op) => !LOCAL_OPERATIONS.has(op.name) && op.opens !== 'nothing');
}
