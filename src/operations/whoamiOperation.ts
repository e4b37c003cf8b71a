import { z } from 'zod';
import { formatGrant } from '../domain/grants.js';
import { defineOperation } from './operation.js';

/**
 * Who the caller is and what its grants are: what a front end (the web console) shows and offers
 * follows from it. Every authenticated principal may ask about itself (`aboutCaller`), whatever its
 * grants; it reads nothing of the ledger. Run locally (the CLI), no grant applies: `grants` is null.
 */
export const whoami = defineOperation({
  name: 'whoami',
  summary: 'who the caller is and its grants (null: local, no grant applies)',
  input: z.strictObject({}),
  permission: 'read',
  aboutCaller: true,
  custodianOf: () => null,
  writes: false,
  kind: 'unary',
  // Served (a server has the ledger open anyway); it is not read.
  opens: 'ledger',
  prepare: () => null,
  async run(_p, host) {
    return {
      principal: host.actor ?? null,
      grants: host.grants === undefined ? null : host.grants.map(formatGrant),
    };
  },
});
