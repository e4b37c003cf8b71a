import { z } from 'zod';
import { decimalString, hex16, sha256Hex } from './eventFields.js';

/**
 * The schema of a checkpoint (stream `<prefix>checkpoints`, src/audit/checkpointer.ts): the MACed
 * heads of the streams written since the one before. Apart from events.ts, which assembles every
 * family into the one table stored events are parsed by, so each family's file holds only its own.
 */

export const checkpointEventSchemas = {
  /**
   * Tamper evidence (stream `<prefix>checkpoints`, docs/audit.md): the head of every stream written
   * in (previousPosition, coveredPosition], MACed under system key `stkIdentity`. Positions and
   * revisions are decimal strings (bigints).
   */
  LedgerCheckpointed: z.strictObject({
    previousPosition: decimalString,
    coveredPosition: decimalString,
    heads: z.array(
      z.strictObject({
        stream: z.string().min(1).max(512),
        revision: decimalString,
        position: decimalString,
        hash: sha256Hex,
      }),
    ),
    stkIdentity: hex16,
    mac: sha256Hex,
  }),
} as const;
