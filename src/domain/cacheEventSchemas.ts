import { z } from 'zod';
import { keyId, scoped } from './eventFields.js';

/**
 * The schemas of the cache operations an admin records (stream `<prefix>operations`): a key or a
 * whole cache ejected. A family of its own, apart from events.ts, which assembles every family
 * into the one table stored events are parsed by.
 */

export const cacheEventSchemas = {
  CacheEntryEjected: z.strictObject({ ...scoped, keyId: keyId.nullable() }),
  CacheCleared: z.strictObject({}),
} as const;
