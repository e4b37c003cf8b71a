import { GLOBAL_NAMESPACE } from '../domain/identities.js';

/** Where data lives, as HBase names it: the table, its column family, and an explicit attribute. */
export interface DataLocation {
  /** An explicit namespace attribute (HBase: the family's ENCRYPTION_KEY_NAMESPACE). */
  readonly explicit?: string;
  readonly table?: string;
  readonly family?: string;
}

/**
 * The namespaces to try for new data, in HBase's order: the explicit attribute, `<table>/<family>`,
 * `<table>`, then the global namespace `*`. Absent parts are skipped, duplicates dropped.
 */
export function namespaceCandidates(location: DataLocation): string[] {
  const present = (part: string | undefined) => (part === '' ? undefined : part);
  const table = present(location.table);
  const family = present(location.family);
  const candidates = [
    present(location.explicit),
    table !== undefined && family !== undefined ? `${table}/${family}` : undefined,
    table,
    GLOBAL_NAMESPACE,
  ].filter((c): c is string => c !== undefined);
  return [...new Set(candidates)];
}
