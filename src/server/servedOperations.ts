import { isLocalOnly } from '../operations/keyledgerApi.js';
import { type AnyOperation, OPERATIONS } from '../operations/operations.js';

/**
 * The operations the API serves (routes, OpenAPI document): not those on the caller's local files
 * (LOCAL_ONLY_OPERATIONS: a server has no caller's files, so they have no route, 404; `audit-export`
 * streams the same export to the caller instead).
 */
export function servedOperations(): readonly AnyOperation[] {
  return OPERATIONS.filter((op) => !isLocalOnly(op.name) && op.opens !== 'nothing');
}
